namespace Federated.Learning.Data;

/// <summary>Per-channel normalisation <c>(x - mean) / std</c> applied once when a dataset is materialised.</summary>
public sealed record Normalization
{
    /// <summary>Creates a normalisation with one mean and standard deviation per channel.</summary>
    public Normalization(IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count == 0 || mean.Count != std.Count)
        {
            throw new ArgumentException($"Normalisation needs one mean and one std per channel (got {mean.Count} and {std.Count}).");
        }

        if (std.Any(s => !(s > 0) || float.IsInfinity(s)))
        {
            throw new ArgumentException("Every normalisation std must be positive and finite.", nameof(std));
        }

        Mean = mean.ToArray();
        Std = std.ToArray();
    }

    /// <summary>Per-channel means.</summary>
    public IReadOnlyList<float> Mean { get; }

    /// <summary>Per-channel standard deviations.</summary>
    public IReadOnlyList<float> Std { get; }

    /// <summary>Leaves features unchanged.</summary>
    public static Normalization None { get; } = new([0f], [1f]);

    /// <summary>Fashion-MNIST training-set statistics (pixels scaled to [0, 1]).</summary>
    public static Normalization FashionMnist { get; } = new([0.2860f], [0.3530f]);

    /// <summary>MNIST training-set statistics.</summary>
    public static Normalization Mnist { get; } = new([0.1307f], [0.3081f]);

    /// <summary>Computes per-channel statistics of a source (for data sets without published ones).</summary>
    public static Normalization Estimate(ILabelledSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var shape = source.SampleShape;
        var channels = shape[0];
        var perChannel = shape.Skip(1).Aggregate(1, (a, b) => a * b);
        var sum = new double[channels];
        var sumSq = new double[channels];
        var buffer = new float[channels * perChannel];
        for (var i = 0; i < source.Count; i++)
        {
            source.CopyFeatures(i, buffer);
            for (var c = 0; c < channels; c++)
            {
                foreach (var v in buffer.AsSpan(c * perChannel, perChannel))
                {
                    sum[c] += v;
                    sumSq[c] += (double)v * v;
                }
            }
        }

        var n = (double)source.Count * perChannel;
        var mean = sum.Select(s => (float)(s / n)).ToArray();
        var std = sumSq.Select((s, c) => (float)Math.Sqrt(Math.Max(s / n - (double)mean[c] * mean[c], 1e-12))).ToArray();
        return new Normalization(mean, std);
    }

    /// <summary>Normalises one sample in place (<paramref name="channels"/> planes of equal size).</summary>
    public void Apply(Span<float> sample, int channels)
    {
        if (Mean.Count != 1 && Mean.Count != channels)
        {
            throw new ArgumentException($"Normalisation has {Mean.Count} channels but samples have {channels}.");
        }

        var plane = sample.Length / channels;
        for (var c = 0; c < channels; c++)
        {
            var m = Mean[Mean.Count == 1 ? 0 : c];
            var inv = 1f / Std[Std.Count == 1 ? 0 : c];
            var span = sample.Slice(c * plane, plane);
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = (span[i] - m) * inv;
            }
        }
    }
}
