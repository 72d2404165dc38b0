namespace Federated.Learning.Data;

/// <summary>A source over features and labels already in memory (tests, synthetic data, CSV readers).</summary>
public sealed class InMemorySource : ILabelledSource
{
    private readonly float[] _features;
    private readonly int[] _labels;
    private readonly int _sampleSize;

    /// <summary>Wraps <paramref name="features"/> (Count × product(shape), row-major) and labels.</summary>
    public InMemorySource(string name, float[] features, int[] labels, IReadOnlyList<int> sampleShape, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (sampleShape.Count == 0 || sampleShape.Any(d => d <= 0))
        {
            throw new ArgumentException("Every sample dimension must be positive.", nameof(sampleShape));
        }

        _sampleSize = sampleShape.Aggregate(1, (a, b) => checked(a * b));
        if (features.Length != (long)labels.Length * _sampleSize)
        {
            throw new ArgumentException($"{features.Length} features do not hold {labels.Length} samples of {_sampleSize} values.", nameof(features));
        }

        if (numClasses < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "There must be at least one class.");
        }

        foreach (var label in labels)
        {
            if ((uint)label >= (uint)numClasses)
            {
                throw new ArgumentException($"Label {label} is outside 0..{numClasses - 1}.", nameof(labels));
            }
        }

        Name = name;
        _features = features;
        _labels = labels;
        SampleShape = sampleShape.ToArray();
        NumClasses = numClasses;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public int NumClasses { get; }

    /// <inheritdoc />
    public IReadOnlyList<int> SampleShape { get; }

    /// <inheritdoc />
    public ReadOnlySpan<int> Labels => _labels;

    /// <inheritdoc />
    public void CopyFeatures(int index, Span<float> destination) =>
        _features.AsSpan(checked(index * _sampleSize), _sampleSize).CopyTo(destination);
}
