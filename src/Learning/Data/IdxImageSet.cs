using System.Globalization;

namespace Federated.Learning.Data;

/// <summary>How the pixels of each image are laid out in an IDX image file.</summary>
public enum IdxImageLayout
{
    /// <summary>Row-major images, as in MNIST and Fashion-MNIST: no change is made.</summary>
    RowMajor,

    /// <summary>
    /// Column-major (transposed) images, as in the EMNIST binary files. The images are transposed on load
    /// so that <see cref="IdxImageSet.Pixels"/> is row-major; the declared height and width swap.
    /// </summary>
    Transposed,
}

/// <summary>The paths of the image and label files of one split of an IDX dataset.</summary>
/// <param name="ImagesPath">The images file, e.g. <c>train-images-idx3-ubyte.gz</c>.</param>
/// <param name="LabelsPath">The labels file, e.g. <c>train-labels-idx1-ubyte.gz</c>.</param>
public readonly record struct IdxSplitPaths(string ImagesPath, string LabelsPath);

/// <summary>
/// A labelled image dataset loaded from a pair of IDX files (MNIST, Fashion-MNIST, EMNIST):
/// unsigned-byte pixels, row-major, <c>Count × Rows × Cols × Channels</c>, and one integer label per image.
/// </summary>
public sealed class IdxImageSet
{
    private IdxImageSet(byte[] pixels, int[] labels, int rows, int cols, int channels, int numClasses)
    {
        Pixels = pixels;
        Labels = labels;
        Rows = rows;
        Cols = cols;
        Channels = channels;
        NumClasses = numClasses;
    }

    /// <summary>The pixels, row-major, <c>Count × Rows × Cols × Channels</c> (channels innermost).</summary>
    public byte[] Pixels { get; }

    /// <summary>The label of every image, in <c>[0, NumClasses)</c>.</summary>
    public int[] Labels { get; }

    /// <summary>The number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>The image height.</summary>
    public int Rows { get; }

    /// <summary>The image width.</summary>
    public int Cols { get; }

    /// <summary>The number of channels: 1 for 3-D image files, the last dimension of 4-D files.</summary>
    public int Channels { get; }

    /// <summary>The number of pixel values per image: <c>Rows × Cols × Channels</c>.</summary>
    public int PixelsPerImage => Rows * Cols * Channels;

    /// <summary>The number of classes: the largest label plus one.</summary>
    public int NumClasses { get; }

    /// <summary>Loads an image file and its label file.</summary>
    /// <param name="imagesPath">An unsigned-byte IDX file of shape N×H×W or N×H×W×C.</param>
    /// <param name="labelsPath">A 1-D integer IDX file of N labels.</param>
    /// <param name="layout">Whether the images are stored transposed (EMNIST).</param>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or the two files disagree.</exception>
    public static IdxImageSet Load(string imagesPath, string labelsPath, IdxImageLayout layout = IdxImageLayout.RowMajor)
    {
        var images = IdxReader.Read(imagesPath);
        var labelArray = IdxReader.Read(labelsPath);

        if (images.ElementType != IdxElementType.UnsignedByte)
        {
            throw new InvalidDataException(
                $"'{imagesPath}' holds {IdxArray.Describe(images.ElementType)} elements; image files must hold unsigned bytes.");
        }

        if (images.Shape.Count is not (3 or 4))
        {
            throw new InvalidDataException(
                $"'{imagesPath}' has shape {images} but an image file must be N×H×W or N×H×W×C.");
        }

        int[] labels;
        try
        {
            labels = labelArray.ToInt32Labels();
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidDataException(ex.Message, ex);
        }

        if (labels.Length != images.Count)
        {
            throw new InvalidDataException(
                $"'{imagesPath}' holds {images.Count.ToString("N0", CultureInfo.InvariantCulture)} images but '{labelsPath}' holds {labels.Length.ToString("N0", CultureInfo.InvariantCulture)} labels; the counts must match.");
        }

        var rows = images.Shape[1];
        var cols = images.Shape[2];
        var channels = images.Shape.Count == 4 ? images.Shape[3] : 1;
        var pixels = images.AsBytes();
        if (layout == IdxImageLayout.Transposed)
        {
            TransposeImagesInPlace(pixels, images.Count, rows, cols, channels);
            (rows, cols) = (cols, rows);
        }
        else if (layout != IdxImageLayout.RowMajor)
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown image layout.");
        }

        var max = -1;
        foreach (var label in labels)
        {
            max = Math.Max(max, label);
        }

        return new IdxImageSet(pixels, labels, rows, cols, channels, max + 1);
    }

    /// <summary>Finds and loads one split of a dataset in the MNIST file naming; see <see cref="FindSplit"/>.</summary>
    public static IdxImageSet LoadSplit(string directory, string split, IdxImageLayout layout = IdxImageLayout.RowMajor)
    {
        var paths = FindSplit(directory, split);
        return Load(paths.ImagesPath, paths.LabelsPath, layout);
    }

    /// <summary>
    /// Finds the files of one split in the MNIST / Fashion-MNIST naming:
    /// <c>{prefix}-images-idx3-ubyte</c> and <c>{prefix}-labels-idx1-ubyte</c>, with or without <c>.gz</c>.
    /// </summary>
    /// <param name="directory">The directory holding the files, e.g. <c>/usr/share/fashion-mnist</c>.</param>
    /// <param name="split"><c>train</c>, or <c>t10k</c> / <c>test</c> for the test split (case-insensitive).</param>
    /// <exception cref="ArgumentException"><paramref name="split"/> is not one of the known names.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">A file was found under none of the searched names; the message lists them.</exception>
    public static IdxSplitPaths FindSplit(string directory, string split)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(split);
        var prefix = split.ToUpperInvariant() switch
        {
            "TRAIN" => "train",
            "T10K" or "TEST" => "t10k",
            _ => throw new ArgumentException($"Unknown split '{split}': expected 'train', 't10k' or 'test'.", nameof(split)),
        };

        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException(
                $"Dataset directory '{directory}' does not exist (install the Debian package 'dataset-fashion-mnist' or pass the directory holding the IDX files).");
        }

        return new IdxSplitPaths(
            FindFile(directory, $"{prefix}-images-idx3-ubyte"),
            FindFile(directory, $"{prefix}-labels-idx1-ubyte"));
    }

    /// <summary>
    /// Transposes every image in place: each image stored as <paramref name="rows"/>×<paramref name="cols"/>
    /// (×<paramref name="channels"/>, channels innermost) becomes its <paramref name="cols"/>×<paramref name="rows"/>
    /// transpose. EMNIST stores its images this way; calling this once makes them upright.
    /// </summary>
    /// <param name="pixels">The images, back to back.</param>
    /// <param name="count">The number of images.</param>
    /// <param name="rows">The first (declared) image dimension.</param>
    /// <param name="cols">The second (declared) image dimension.</param>
    /// <param name="channels">The innermost channel count, left in place.</param>
    public static void TransposeImagesInPlace(byte[] pixels, int count, int rows, int cols, int channels = 1)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        var imageSize = (long)rows * cols * channels;
        if (imageSize * count != pixels.Length)
        {
            throw new ArgumentException(
                $"The buffer holds {pixels.Length} bytes but {count}×{rows}×{cols}×{channels} = {imageSize * count} were expected.",
                nameof(pixels));
        }

        if (rows == cols && channels == 1)
        {
            for (var image = 0; image < count; image++)
            {
                var img = pixels.AsSpan(image * rows * cols, rows * cols);
                for (var r = 0; r < rows; r++)
                {
                    for (var c = r + 1; c < cols; c++)
                    {
                        (img[(r * cols) + c], img[(c * cols) + r]) = (img[(c * cols) + r], img[(r * cols) + c]);
                    }
                }
            }

            return;
        }

        var scratch = new byte[imageSize];
        for (var image = 0; image < count; image++)
        {
            var img = pixels.AsSpan((int)(image * imageSize), (int)imageSize);
            img.CopyTo(scratch);
            for (var r = 0; r < rows; r++)
            {
                for (var c = 0; c < cols; c++)
                {
                    scratch.AsSpan(((r * cols) + c) * channels, channels).CopyTo(img.Slice(((c * rows) + r) * channels, channels));
                }
            }
        }
    }

    private static string FindFile(string directory, string baseName)
    {
        string[] candidates = [baseName, baseName + ".gz"];
        foreach (var candidate in candidates)
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException(
            $"No IDX file '{baseName}' in '{directory}': searched {string.Join(", ", candidates.Select(c => $"'{Path.Combine(directory, c)}'"))}. " +
            "Install the Debian package 'dataset-fashion-mnist' or pass the directory holding the files.",
            Path.Combine(directory, baseName));
    }
}
