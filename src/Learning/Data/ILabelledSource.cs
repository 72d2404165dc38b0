namespace Federated.Learning.Data;

/// <summary>
/// A labelled data source before it becomes tensors: IDX files, and later CSV files or image folders.
/// Features come out as floats in their natural range (pixels in [0, 1]); normalisation happens once when the
/// source is materialised into a <see cref="TensorDataset"/>.
/// </summary>
public interface ILabelledSource
{
    /// <summary>A short name for logs and reports.</summary>
    string Name { get; }

    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Number of classes (labels are 0 … NumClasses-1).</summary>
    int NumClasses { get; }

    /// <summary>Shape of one sample, e.g. [1, 28, 28] (channels, height, width).</summary>
    IReadOnlyList<int> SampleShape { get; }

    /// <summary>All labels, in sample order.</summary>
    ReadOnlySpan<int> Labels { get; }

    /// <summary>Copies sample <paramref name="index"/>'s features into <paramref name="destination"/>.</summary>
    void CopyFeatures(int index, Span<float> destination);
}
