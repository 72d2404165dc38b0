using System.Security.Cryptography;
using System.Text;
using Federated.Learning.Privacy;
using Federated.Learning.Robustness;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// Robust buckets under secure aggregation: the round's agents are split into random buckets, each bucket runs its own
/// SecAgg+ instance (its own neighbour graph, threshold and survivors), and a robust rule combines the bucket means.
/// The coordinator learns one sum per bucket instead of one sum per round: smaller buckets resist more poisoned agents
/// (a poisoned agent spoils only its own bucket's mean) and reveal more partial sums (less privacy).
/// </summary>
public static class SecureBuckets
{
    /// <summary>
    /// A uniform random partition of agents 0 … n − 1 into ⌊n/B⌋ buckets of B or B + 1 agents (the first n mod B
    /// buckets take one more), each ascending; one bucket of all agents when <paramref name="bucketSize"/> is 0 or n &lt; 2B.
    /// The permutation is a Fisher–Yates shuffle on <paramref name="random"/> (a secret stream outside simulations).
    /// </summary>
    public static int[][] Draw(int agents, int bucketSize, ChaCha20Random random)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(agents);
        ArgumentOutOfRangeException.ThrowIfNegative(bucketSize);
        ArgumentNullException.ThrowIfNull(random);
        if (bucketSize == 0 || agents < 2 * bucketSize)
        {
            return [Enumerable.Range(0, agents).ToArray()];
        }

        var order = Enumerable.Range(0, agents).ToArray();
        for (var i = agents - 1; i > 0; i--)
        {
            var j = (int)(random.NextUInt64() % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }

        var count = agents / bucketSize;
        var extra = agents % bucketSize;
        var buckets = new int[count][];
        var next = 0;
        for (var b = 0; b < count; b++)
        {
            var size = bucketSize + (b < extra ? 1 : 0);
            buckets[b] = [.. order.AsSpan(next, size).ToArray().Order()];
            next += size;
        }

        return buckets;
    }

    /// <summary>
    /// Combines the surviving buckets' sums: each bucket's mean (its sum over its weight) weighted by that weight,
    /// through <paramref name="aggregator"/> (the weighted mean when null or when a single bucket survived).
    /// </summary>
    public static float[] Combine(IReadOnlyList<(float[] Sum, double Weight)> buckets, IRobustAggregator? aggregator, RobustContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        if (buckets.Count == 0)
        {
            throw new ArgumentException("No bucket survived.", nameof(buckets));
        }

        var means = new List<ReadOnlyMemory<float>>(buckets.Count);
        var weights = new List<double>(buckets.Count);
        foreach (var (sum, weight) in buckets)
        {
            if (!(weight > 0))
            {
                throw new ArgumentOutOfRangeException(nameof(buckets), weight, "Bucket weights must be positive.");
            }

            var mean = new float[sum.Length];
            for (var i = 0; i < sum.Length; i++)
            {
                mean[i] = (float)(sum[i] / weight);
            }

            means.Add(mean);
            weights.Add(weight);
        }

        if (aggregator is not null && means.Count > 1)
        {
            return aggregator.Aggregate(means, weights, context);
        }

        var total = weights.Sum();
        var result = new float[means[0].Length];
        for (var b = 0; b < means.Count; b++)
        {
            var span = means[b].Span;
            var w = weights[b] / total;
            for (var i = 0; i < result.Length; i++)
            {
                result[i] += (float)(span[i] * w);
            }
        }

        return result;
    }
}

/// <summary>One bucket of a bucketed round: its agents (round-wide ids) and its outcome.</summary>
/// <param name="Agents">The bucket's agents, ascending; bucket index i is <c>Agents[i]</c>.</param>
/// <param name="Run">The bucket's secure-aggregation run; null when it failed.</param>
/// <param name="FailureReason">Why the bucket failed; null when it succeeded.</param>
public sealed record SecureBucketRun(int[] Agents, SecureAggregationRun? Run, string? FailureReason);

/// <summary>A bucketed round's buckets and the robust combination of the surviving bucket means.</summary>
/// <param name="Buckets">Every bucket, in draw order.</param>
/// <param name="Aggregate">The combined mean update (null when fewer buckets survived than required).</param>
public sealed record BucketedSecureAggregationRun(IReadOnlyList<SecureBucketRun> Buckets, float[]? Aggregate);

/// <summary>
/// Runs a bucketed secure-aggregation round in memory (tests, benchmarks): <see cref="SecureBuckets.Draw"/> splits the
/// scenario's agents, each bucket runs <see cref="InMemorySecureAggregation"/> with its own seed, graph and dropouts,
/// a bucket whose unmasking fails is dropped, and the surviving bucket means (each agent weighing 1) are combined
/// with the aggregator passed to <see cref="Run"/>.
/// </summary>
public static class BucketedSecureAggregation
{
    /// <summary>Runs <paramref name="scenario"/> in buckets of <paramref name="bucketSize"/>; agent u's update is <paramref name="inputs"/>(u).</summary>
    public static BucketedSecureAggregationRun Run(SecureAggregationScenario scenario, int bucketSize, IRobustAggregator? aggregator, Func<int, float[]> inputs, int minBuckets = 1)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(inputs);
        var seed = SHA256.HashData(Encoding.UTF8.GetBytes($"{scenario.Seed}/buckets/{scenario.Round}"));
        var buckets = SecureBuckets.Draw(scenario.Agents, bucketSize, new ChaCha20Random(seed));
        var runs = new List<SecureBucketRun>(buckets.Length);
        for (var b = 0; b < buckets.Length; b++)
        {
            var members = buckets[b];
            var bucketScenario = scenario with
            {
                Agents = members.Length,
                Seed = $"{scenario.Seed}/bucket/{b}",
                TamperedShares = scenario.TamperedShares.Select(u => Array.IndexOf(members, u)).Where(i => i >= 0).ToHashSet(),
                BadSignatures = scenario.BadSignatures.Select(u => Array.IndexOf(members, u)).Where(i => i >= 0).ToHashSet(),
            };
            try
            {
                runs.Add(new SecureBucketRun(members, InMemorySecureAggregation.Run(bucketScenario, i => inputs(members[i])), null));
            }
            catch (SecureAggregationException e)
            {
                runs.Add(new SecureBucketRun(members, null, e.Message));
            }
        }

        var live = runs.Where(r => r.Run is not null).Select(r => (r.Run!.Result.Sum, (double)r.Run.Result.Survivors.Length)).ToList();
        var aggregate = live.Count >= Math.Max(1, minBuckets) ? SecureBuckets.Combine(live, aggregator, new RobustContext { Round = (int)scenario.Round }) : null;
        return new BucketedSecureAggregationRun(runs, aggregate);
    }
}
