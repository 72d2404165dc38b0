using SkiaSharp;

namespace Federated.Learning.Data;

/// <summary>
/// Reads an image-classification data set laid out one folder per class (<c>root/cat/*.png</c>,
/// <c>root/dog/*.jpg</c>): classes are the sub-folder names in ordinal order, every PNG, JPEG, BMP, GIF or WebP file
/// in a class folder is a sample, decoded with SkiaSharp and resized to <c>width × height</c> with 1 (grey) or 3
/// (RGB) channels, pixels in [0, 1]. A file that does not decode, an empty class folder or a root without class
/// folders is an <see cref="InvalidDataException"/> that names the file or folder.
/// </summary>
public static class ImageFolderSource
{
    /// <summary>The file extensions read as images (case-insensitive); other files are skipped.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"];

    /// <summary>Loads the images under <paramref name="root"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The root does not exist.</exception>
    /// <exception cref="InvalidDataException">The layout or a file is invalid.</exception>
    public static InMemorySource Load(string root, int width, int height, int channels)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Images have 1 (grey) or 3 (RGB) channels.");
        }

        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist.");
        }

        var classes = Directory.GetDirectories(root).Select(d => Path.GetFileName(d)!).Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        if (classes.Count < 2)
        {
            throw new InvalidDataException($"Image folder '{root}' must hold one sub-folder per class (at least two); it holds {classes.Count}.");
        }

        var plane = width * height;
        var features = new List<float>();
        var labels = new List<int>();
        var sample = new float[plane * channels];
        for (var c = 0; c < classes.Count; c++)
        {
            var folder = Path.Combine(root, classes[c]);
            var files = Directory.GetFiles(folder)
                .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal)
                .ToList();
            if (files.Count == 0)
            {
                throw new InvalidDataException($"Class folder '{folder}' holds no image ({string.Join(", ", Extensions)}).");
            }

            foreach (var file in files)
            {
                Decode(file, width, height, channels, sample);
                features.AddRange(sample);
                labels.Add(c);
            }
        }

        return new InMemorySource(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(root))), features.ToArray(), labels.ToArray(), [channels, height, width], classes.Count);
    }

    /// <summary>The class names of the folder layout, in class order.</summary>
    public static IReadOnlyList<string> ClassNames(string root) =>
        Directory.GetDirectories(root).Select(d => Path.GetFileName(d)!).Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList();

    private static void Decode(string file, int width, int height, int channels, Span<float> destination)
    {
        SKBitmap? decoded;
        try
        {
            decoded = SKBitmap.Decode(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new InvalidDataException($"Image '{file}' cannot be read: {e.Message}", e);
        }

        if (decoded is null)
        {
            throw new InvalidDataException($"Image '{file}' is not a valid PNG, JPEG, BMP, GIF or WebP file.");
        }

        using (decoded)
        {
            var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            using var resized = decoded.Width == width && decoded.Height == height && decoded.ColorType == SKColorType.Rgba8888
                ? decoded.Copy()
                : decoded.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));
            if (resized is null)
            {
                throw new InvalidDataException($"Image '{file}' ({decoded.Width}×{decoded.Height}) cannot be resized to {width}×{height}.");
            }

            var pixels = resized.GetPixelSpan();
            var plane = width * height;
            for (var p = 0; p < plane; p++)
            {
                float r = pixels[p * 4], g = pixels[(p * 4) + 1], b = pixels[(p * 4) + 2];
                if (channels == 1)
                {
                    destination[p] = ((0.299f * r) + (0.587f * g) + (0.114f * b)) / 255f;
                }
                else
                {
                    destination[p] = r / 255f;
                    destination[plane + p] = g / 255f;
                    destination[(2 * plane) + p] = b / 255f;
                }
            }
        }
    }
}
