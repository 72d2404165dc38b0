using System.Numerics;
using Federated.Learning.Strategies;

namespace Federated.Learning.Robustness;

/// <summary>The weighted mean Σ wᵢ xᵢ / Σ wᵢ (FedAvg's rule; not robust): the baseline, and the inner rule by default.</summary>
public sealed class WeightedMean : IRobustAggregator
{
    /// <inheritdoc />
    public string Name => "mean";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        return RobustMath.WeightedMean(updates, weights, length);
    }
}

/// <summary>
/// The coordinate-wise median (Yin et al., 2018): every coordinate is the median of the n updates' values (the mean
/// of the two middle values for even n). Weights are ignored. With fewer than n/2 arbitrary updates every
/// coordinate stays within the range of the honest updates' values.
/// </summary>
public sealed class CoordinateMedian : IRobustAggregator
{
    /// <inheritdoc />
    public string Name => "median";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        return RobustMath.ReduceSortedColumns(updates, length, default(MedianReducer));
    }

    private readonly struct MedianReducer : IColumnReducer
    {
        public Vector<float> Reduce(ReadOnlySpan<Vector<float>> sorted)
        {
            var n = sorted.Length;
            return n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] * 0.5f) + (sorted[n / 2] * 0.5f);
        }
    }
}

/// <summary>
/// The coordinate-wise trimmed mean (Yin et al., 2018): every coordinate drops its ⌊βn⌋ smallest and ⌊βn⌋ largest
/// values and averages the rest. β is in [0, 0.5) (0 gives the unweighted mean). Weights are ignored. With at
/// most ⌊βn⌋ arbitrary updates every coordinate stays within the range of the honest updates' values.
/// </summary>
public sealed class TrimmedMean : IRobustAggregator
{
    /// <summary>Creates the rule with trimming fraction <paramref name="beta"/> ∈ [0, 0.5).</summary>
    public TrimmedMean(double beta)
    {
        if (!(beta is >= 0 and < 0.5))
        {
            throw new ArgumentOutOfRangeException(nameof(beta), beta, $"trimmed_mean: beta must be in [0, 0.5) (the fraction trimmed from each side), not {beta}.");
        }

        Beta = beta;
    }

    /// <summary>β, the fraction trimmed from each side.</summary>
    public double Beta { get; }

    /// <inheritdoc />
    public string Name => $"trimmed_mean:beta={StrategyGuards.Format(Beta)}";

    /// <summary>⌊βn⌋, the values trimmed from each side of every coordinate for <paramref name="n"/> updates.</summary>
    public int TrimCount(int n) => (int)Math.Floor((Beta * n) + 1e-9);

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        return RobustMath.ReduceSortedColumns(updates, length, new TrimmedReducer(TrimCount(updates.Count)));
    }

    private readonly struct TrimmedReducer(int trim) : IColumnReducer
    {
        public Vector<float> Reduce(ReadOnlySpan<Vector<float>> sorted)
        {
            // Scaling before adding keeps any finite inputs finite.
            var kept = sorted[trim..^trim];
            var scale = 1f / kept.Length;
            var sum = Vector<float>.Zero;
            foreach (var v in kept)
            {
                sum += v * scale;
            }

            return sum;
        }
    }
}
