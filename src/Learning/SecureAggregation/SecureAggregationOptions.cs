namespace Federated.Learning.SecureAggregation;

/// <summary>The parameters of a SecAgg+ round that the coordinator announces and every agent uses.</summary>
public sealed record SecureAggregationOptions
{
    /// <summary>b: masked vectors live in Z_{2^b} (1 to 32); the upload is b bits per parameter.</summary>
    public int RingBits { get; init; } = 32;

    /// <summary>c: update coordinates are clipped to [−c, c] before quantisation.</summary>
    public double ClipRange { get; init; } = 1.0;

    /// <summary>k: neighbours per agent; null for <see cref="NeighbourGraph.DefaultDegree"/>; n − 1 for the original protocol.</summary>
    public int? Degree { get; init; }

    /// <summary>t: shares needed to reconstruct a secret; null for ⌊k/2⌋ + 1 (a strict majority of the neighbours).</summary>
    public int? Threshold { get; init; }

    /// <summary>Round stochastically (unbiased) rather than to the nearest level.</summary>
    public bool StochasticRounding { get; init; } = true;

    /// <summary>Threads for mask expansion (-1: the runtime's choice; 1: the calling thread).</summary>
    public int MaskParallelism { get; init; } = -1;

    /// <summary>k for <paramref name="agents"/> agents.</summary>
    public int ResolveDegree(int agents) => Degree ?? NeighbourGraph.DefaultDegree(agents);

    /// <summary>t for degree <paramref name="degree"/>, checked to lie in [1, k].</summary>
    public int ResolveThreshold(int degree)
    {
        var threshold = Threshold ?? ((degree / 2) + 1);
        if (threshold < 1 || threshold > degree)
        {
            throw new ArgumentOutOfRangeException(nameof(degree), threshold, $"The threshold must lie between 1 and the degree ({degree}).");
        }

        return threshold;
    }

    /// <summary>The quantiser for a round of <paramref name="agents"/> agents.</summary>
    public RingQuantizer Quantizer(int agents) => new(RingBits, ClipRange, agents);
}
