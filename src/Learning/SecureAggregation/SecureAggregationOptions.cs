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

    /// <summary>Distributed discrete (Skellam) noise; null for none (the updates are quantised with <see cref="Quantizer"/>).</summary>
    public DistributedNoiseOptions? Noise { get; init; }

    /// <summary>
    /// The fewest survivors whose sum may be unmasked: the coordinator fails the round below it and every agent refuses
    /// to reveal shares for a smaller sum. Null: 1 without noise; with noise max(t + 1, ⌈n/2⌉), capped at n.
    /// </summary>
    public int? MinSurvivors { get; init; }

    /// <summary>n_min for a round of <paramref name="agents"/> agents with degree <paramref name="degree"/>.</summary>
    public int ResolveMinSurvivors(int agents, int degree)
    {
        var resolved = MinSurvivors ?? (Noise is null ? 1 : Math.Max(ResolveThreshold(degree) + 1, (agents + 1) / 2));
        return Math.Clamp(resolved, 1, agents);
    }

    /// <summary>The Skellam encoding for a round of <paramref name="agents"/> agents and <paramref name="length"/> parameters; null without noise.</summary>
    public SkellamEncoding? NoiseEncoding(int agents, int length) =>
        Noise is null ? null : SkellamEncoding.Create(RingBits, length, agents, ResolveMinSurvivors(agents, ResolveDegree(agents)), Noise);

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
