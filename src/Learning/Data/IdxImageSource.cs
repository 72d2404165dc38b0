namespace Federated.Learning.Data;

/// <summary>An <see cref="ILabelledSource"/> over IDX image and label files (MNIST, Fashion-MNIST, EMNIST).</summary>
public sealed class IdxImageSource : ILabelledSource
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DebianFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    private readonly IdxImageSet _set;

    /// <summary>Wraps an already loaded image set.</summary>
    public IdxImageSource(IdxImageSet set, string name)
    {
        ArgumentNullException.ThrowIfNull(set);
        _set = set;
        Name = name;
        SampleShape = [set.Channels, set.Rows, set.Cols];
    }

    /// <summary>
    /// Loads split <paramref name="split"/> (<c>train</c> or <c>test</c>/<c>t10k</c>) from <paramref name="directory"/>,
    /// raw or gzip-compressed.
    /// </summary>
    public static IdxImageSource LoadSplit(string directory, string split, IdxImageLayout layout = IdxImageLayout.RowMajor)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException(
                $"IDX data directory '{directory}' does not exist. Install Fashion-MNIST with 'apt-get install dataset-fashion-mnist' " +
                $"(it lands in {DebianFashionMnistDirectory}) or pass the directory that holds the IDX files.");
        }

        return new IdxImageSource(IdxImageSet.LoadSplit(directory, split, layout), $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(directory))}/{split}");
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int Count => _set.Count;

    /// <inheritdoc />
    public int NumClasses => _set.NumClasses;

    /// <inheritdoc />
    public IReadOnlyList<int> SampleShape { get; }

    /// <inheritdoc />
    public ReadOnlySpan<int> Labels => _set.Labels;

    /// <inheritdoc />
    public void CopyFeatures(int index, Span<float> destination)
    {
        var size = _set.PixelsPerImage;
        var pixels = _set.Pixels.AsSpan(checked(index * size), size);
        if (_set.Channels == 1)
        {
            for (var i = 0; i < size; i++)
            {
                destination[i] = pixels[i] * (1f / 255f);
            }

            return;
        }

        // IDX stores N×H×W×C; models take C×H×W.
        var plane = _set.Rows * _set.Cols;
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < _set.Channels; c++)
            {
                destination[c * plane + p] = pixels[p * _set.Channels + c] * (1f / 255f);
            }
        }
    }
}
