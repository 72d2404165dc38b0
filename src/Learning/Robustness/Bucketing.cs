using Federated.Learning.Data.Partitioning;

namespace Federated.Learning.Robustness;

/// <summary>
/// Bucketing (Karimireddy, He and Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via Bucketing",
/// ICLR 2022): the updates are put in a random order (seeded by the seed and the round, so reruns agree), cut into
/// ⌈n/s⌉ buckets of s consecutive updates (the last may be smaller), every bucket is averaged (weighted; its weight
/// is the sum of its members'), and the bucket means go to the inner rule. Averaging first reduces the
/// heterogeneity the inner rule sees, for non-IID data. Records <c>robust.buckets</c>.
/// </summary>
public sealed class Bucketing : IRobustAggregator
{
    /// <summary>Wraps <paramref name="inner"/> with buckets of <paramref name="bucketSize"/> ≥ 1 updates, permuted with <paramref name="seed"/>.</summary>
    public Bucketing(int bucketSize, IRobustAggregator inner, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (bucketSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(bucketSize), bucketSize, $"bucketing: the bucket size s must be ≥ 1, not {bucketSize}.");
        }

        BucketSize = bucketSize;
        Inner = inner;
        Seed = seed;
    }

    /// <summary>s.</summary>
    public int BucketSize { get; }

    /// <summary>The rule applied to the bucket means.</summary>
    public IRobustAggregator Inner { get; }

    /// <summary>The permutation seed (mixed with the round).</summary>
    public ulong Seed { get; }

    /// <inheritdoc />
    public string Name => $"bucketing:s={BucketSize},seed={Seed} > {Inner.Name}";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        var order = Enumerable.Range(0, updates.Count).ToArray();
        new StableRandom(Seed ^ ((ulong)(context?.Round ?? 0) * 0x9E3779B97F4A7C15UL)).Shuffle<int>(order);
        var buckets = new List<ReadOnlyMemory<float>>();
        var bucketWeights = new List<double>();
        foreach (var members in order.Chunk(BucketSize))
        {
            var memberWeights = members.Select(i => weights[i]).ToList();
            buckets.Add(members.Length == 1
                ? updates[members[0]]
                : RobustMath.WeightedMean(members.Select(i => updates[i]).ToList(), memberWeights, length));
            bucketWeights.Add(memberWeights.Sum());
        }

        context?.Record("robust.buckets", buckets.Count);
        return Inner.Aggregate(buckets, bucketWeights, context);
    }
}
