using Federated.Learning.Strategies;

namespace Federated.Learning.Robustness;

/// <summary>
/// The weighted geometric median argmin_v Σ αᵢ ‖v − xᵢ‖ (αᵢ the normalised weights), by the smoothed Weiszfeld
/// iteration of RFA (Pillutla, Kakade and Harchaoui, "Robust Aggregation for Federated Learning", 2022): starting
/// from the weighted mean, v ← Σ βᵢ xᵢ / Σ βᵢ with βᵢ = αᵢ / max(ν, ‖v − xᵢ‖), until the objective improves by
/// at most tolerance × objective or after the maximum number of iterations. Breakdown point 1/2 (of the weight).
/// Records <c>robust.iterations</c>.
/// </summary>
public sealed class GeometricMedian : IRobustAggregator
{
    /// <summary>Creates the rule.</summary>
    /// <param name="nu">ν &gt; 0, the smoothing that keeps βᵢ finite when v reaches an update (default 1e-6).</param>
    /// <param name="maxIterations">Weiszfeld iterations at most, ≥ 1 (default 100).</param>
    /// <param name="tolerance">Stop when the relative improvement of the objective is at most this, ≥ 0 (default 1e-6).</param>
    public GeometricMedian(double nu = 1e-6, int maxIterations = 100, double tolerance = 1e-6)
    {
        Nu = StrategyGuards.Positive(nu, nameof(nu));
        if (maxIterations < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxIterations), maxIterations, $"geometric_median: iterations must be ≥ 1, not {maxIterations}.");
        }

        MaxIterations = maxIterations;
        Tolerance = StrategyGuards.NonNegative(tolerance, nameof(tolerance));
    }

    /// <summary>ν.</summary>
    public double Nu { get; }

    /// <summary>The iteration limit.</summary>
    public int MaxIterations { get; }

    /// <summary>The relative tolerance on the objective.</summary>
    public double Tolerance { get; }

    /// <inheritdoc />
    public string Name => $"geometric_median:nu={StrategyGuards.Format(Nu)},iterations={MaxIterations},tolerance={StrategyGuards.Format(Tolerance)}";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        var alpha = RobustMath.Normalise(weights);
        var v = RobustMath.WeightedSum(updates, alpha, length);
        var distances = RobustMath.Distances(updates, v);
        var objective = Objective(alpha, distances);
        var iterations = 0;
        while (iterations < MaxIterations)
        {
            iterations++;
            var beta = new double[alpha.Length];
            for (var i = 0; i < beta.Length; i++)
            {
                beta[i] = alpha[i] / Math.Max(Nu, distances[i]);
            }

            var total = beta.Sum();
            v = RobustMath.WeightedSum(updates, beta.Select(b => b / total).ToArray(), length);
            distances = RobustMath.Distances(updates, v);
            var next = Objective(alpha, distances);
            var converged = Math.Abs(objective - next) <= Tolerance * next;
            objective = next;
            if (converged)
            {
                break;
            }
        }

        context?.Record("robust.iterations", iterations);
        return v;
    }

    private static double Objective(double[] alpha, double[] distances)
    {
        double sum = 0;
        for (var i = 0; i < alpha.Length; i++)
        {
            sum += alpha[i] * distances[i];
        }

        return sum;
    }
}
