using System.Numerics;

namespace Federated.Learning.Robustness;

/// <summary>
/// Krum and Multi-Krum (Blanchard et al., 2017). With f the number of Byzantine updates tolerated, every update's
/// score is the sum of its squared distances to its n − f − 2 nearest other updates; Krum returns the update with
/// the lowest score, Multi-Krum the weighted mean of the m lowest-scoring ones (m = n − f by default). Needs
/// n ≥ 2f + 3. Distances come from the Gram matrix (<see cref="PairwiseDistances"/>): O(n² d). Ties go to the
/// earlier update.
/// </summary>
public sealed class MultiKrum : IRobustAggregator
{
    /// <summary>Creates Multi-Krum tolerating <paramref name="f"/> ≥ 0 Byzantine updates and averaging the best <paramref name="m"/> ≥ 1 (null: n − f).</summary>
    public MultiKrum(int f, int? m = null)
    {
        if (f < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(f), f, $"krum: f (the number of Byzantine updates tolerated) must be ≥ 0, not {f}.");
        }

        if (m is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(m), m, $"multikrum: m (the number of updates averaged) must be ≥ 1, not {m}.");
        }

        F = f;
        M = m;
    }

    /// <summary>f, the number of Byzantine updates tolerated.</summary>
    public int F { get; }

    /// <summary>m, the number of updates averaged (1 is Krum; null means n − f).</summary>
    public int? M { get; }

    /// <inheritdoc />
    public string Name => M switch
    {
        1 => $"krum:f={F}",
        null => $"multikrum:f={F}",
        _ => $"multikrum:f={F},m={M}",
    };

    /// <summary>Krum: Multi-Krum with m = 1.</summary>
    public static MultiKrum Krum(int f) => new(f, 1);

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        var selected = Select(updates, length);
        context?.Record("robust.selected", selected.Count);
        return RobustMath.WeightedMean(selected.Select(i => updates[i]).ToList(), selected.Select(i => weights[i]).ToList(), length);
    }

    /// <summary>The indices of the selected updates, best score first. Throws <see cref="ArgumentException"/> when n &lt; 2f + 3 or m &gt; n.</summary>
    public IReadOnlyList<int> Select(IReadOnlyList<ReadOnlyMemory<float>> updates)
    {
        var length = RobustMath.CheckInputs(Name, updates, Enumerable.Repeat(1.0, updates?.Count ?? 0).ToList());
        return Select(updates!, length);
    }

    /// <summary>
    /// The Krum scores of <paramref name="candidates"/> (indices into the n × n <paramref name="distances"/>) among
    /// themselves: each one's sum of squared distances to its r − f − 2 nearest other candidates (clamped to
    /// [0, r − 1]; r is the number of candidates).
    /// </summary>
    internal static double[] Scores(double[] distances, int n, IReadOnlyList<int> candidates, int f)
    {
        var r = candidates.Count;
        var neighbours = Math.Clamp(r - f - 2, 0, r - 1);
        var scores = new double[r];
        var row = new double[Math.Max(0, r - 1)];
        for (var a = 0; a < r; a++)
        {
            var k = 0;
            for (var b = 0; b < r; b++)
            {
                if (b != a)
                {
                    row[k++] = distances[(candidates[a] * n) + candidates[b]];
                }
            }

            Array.Sort(row);
            double score = 0;
            for (var j = 0; j < neighbours; j++)
            {
                score += row[j];
            }

            scores[a] = score;
        }

        return scores;
    }

    /// <summary>Throws unless <paramref name="n"/> ≥ <paramref name="factor"/>·f + 3.</summary>
    internal static void RequireUpdates(string rule, int n, int f, int factor)
    {
        var needed = (factor * f) + 3;
        if (n < needed)
        {
            throw new ArgumentException($"{rule}: tolerating f = {f} Byzantine updates needs n ≥ {factor}f + 3 = {needed} updates; got n = {n}.");
        }
    }

    private List<int> Select(IReadOnlyList<ReadOnlyMemory<float>> updates, int length)
    {
        var n = updates.Count;
        RequireUpdates(Name, n, F, 2);
        var m = M ?? (n - F);
        if (m > n)
        {
            throw new ArgumentException($"{Name}: cannot average m = {m} of only n = {n} updates.", nameof(updates));
        }

        var distances = PairwiseDistances.Squared(updates, length);
        var scores = Scores(distances, n, Enumerable.Range(0, n).ToArray(), F);
        return Enumerable.Range(0, n).OrderBy(i => scores[i]).ThenBy(i => i).Take(m).ToList();
    }
}

/// <summary>
/// Bulyan (El Mhamdi, Guerraoui and Rouault, 2018) over Krum: θ = n − 2f updates are selected one at a time, each
/// the Krum choice among those not yet selected; then every coordinate averages the β = θ − 2f selected values
/// closest to that coordinate's median. Needs n ≥ 4f + 3. Weights are ignored.
/// </summary>
public sealed class Bulyan : IRobustAggregator
{
    /// <summary>Creates Bulyan tolerating <paramref name="f"/> ≥ 0 Byzantine updates.</summary>
    public Bulyan(int f)
    {
        if (f < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(f), f, $"bulyan: f (the number of Byzantine updates tolerated) must be ≥ 0, not {f}.");
        }

        F = f;
    }

    /// <summary>f, the number of Byzantine updates tolerated.</summary>
    public int F { get; }

    /// <inheritdoc />
    public string Name => $"bulyan:f={F}";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        var n = updates.Count;
        MultiKrum.RequireUpdates(Name, n, F, 4);
        var theta = n - (2 * F);
        var distances = PairwiseDistances.Squared(updates, length);
        var remaining = Enumerable.Range(0, n).ToList();
        var selected = new List<ReadOnlyMemory<float>>(theta);
        while (selected.Count < theta)
        {
            var scores = MultiKrum.Scores(distances, n, remaining, F);
            var best = 0;
            for (var a = 1; a < scores.Length; a++)
            {
                if (scores[a] < scores[best])
                {
                    best = a;
                }
            }

            selected.Add(updates[remaining[best]]);
            remaining.RemoveAt(best);
        }

        return RobustMath.ReduceSortedColumns(selected, length, new ClosestToMedianReducer(theta - (2 * F)));
    }

    /// <summary>
    /// The mean of the <c>count</c> values closest to the median: of the runs of <c>count</c> consecutive sorted
    /// values, the one whose farthest value is nearest the median (ties: the later run).
    /// </summary>
    private readonly struct ClosestToMedianReducer(int count) : IColumnReducer
    {
        public Vector<float> Reduce(ReadOnlySpan<Vector<float>> sorted)
        {
            var n = sorted.Length;
            var median = n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] * 0.5f) + (sorted[n / 2] * 0.5f);
            var bestStart = Vector<float>.Zero;
            var bestSpread = new Vector<float>(float.PositiveInfinity);
            for (var start = 0; start + count <= n; start++)
            {
                var spread = Vector.Max(median - sorted[start], sorted[start + count - 1] - median);
                var better = Vector.LessThanOrEqual(spread, bestSpread);
                bestSpread = Vector.ConditionalSelect(better, spread, bestSpread);
                bestStart = Vector.ConditionalSelect(better, new Vector<float>(start), bestStart);
            }

            var bestEnd = bestStart + new Vector<float>(count);
            var scale = 1f / count;
            var sum = Vector<float>.Zero;
            for (var t = 0; t < n; t++)
            {
                var position = new Vector<float>(t);
                var inside = Vector.GreaterThanOrEqual(position, bestStart) & Vector.LessThan(position, bestEnd);
                sum += Vector.ConditionalSelect(inside, sorted[t] * scale, Vector<float>.Zero);
            }

            return sum;
        }
    }
}
