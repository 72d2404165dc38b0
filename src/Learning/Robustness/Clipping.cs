using System.Numerics.Tensors;
using Federated.Learning.Strategies;

namespace Federated.Learning.Robustness;

/// <summary>Where <see cref="CenteredClipping"/> starts when the context has no previous aggregate.</summary>
public enum ClippingStart
{
    /// <summary>The zero vector (the paper's first round).</summary>
    Zero,

    /// <summary>The coordinate-wise median of the updates.</summary>
    Median,
}

/// <summary>
/// Centred clipping (Karimireddy, He and Jaggi, "Learning from History for Byzantine Robust Optimization", ICML
/// 2021): from a centre v (the previous aggregate or server momentum in <see cref="RobustContext.Previous"/>, else
/// zero or the median), L times v ← v + (1/n) Σ (xᵢ − v) · min(1, τ / ‖xᵢ − v‖). Each update moves the result by at
/// most τ/n per iteration, whatever its size. Weights are ignored, as in the paper. Records <c>robust.clipped</c>
/// (updates clipped in the last iteration).
/// </summary>
public sealed class CenteredClipping : IRobustAggregator
{
    /// <summary>Creates the rule.</summary>
    /// <param name="tau">τ &gt; 0, the clipping radius (default 10).</param>
    /// <param name="iterations">L ≥ 1 (default 5).</param>
    /// <param name="start">The centre when there is no previous aggregate (default zero).</param>
    public CenteredClipping(double tau = 10, int iterations = 5, ClippingStart start = ClippingStart.Zero)
    {
        Tau = StrategyGuards.Positive(tau, nameof(tau));
        if (iterations < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, $"centered_clipping: iterations must be ≥ 1, not {iterations}.");
        }

        if (!Enum.IsDefined(start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), start, "centered_clipping: start must be zero or median.");
        }

        Iterations = iterations;
        Start = start;
    }

    /// <summary>τ.</summary>
    public double Tau { get; }

    /// <summary>L.</summary>
    public int Iterations { get; }

    /// <summary>The fallback centre.</summary>
    public ClippingStart Start { get; }

    /// <inheritdoc />
    public string Name => $"centered_clipping:tau={StrategyGuards.Format(Tau)},iterations={Iterations},start={Start.ToString().ToLowerInvariant()}";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        var previous = context?.Previous ?? ReadOnlyMemory<float>.Empty;
        float[] v;
        if (!previous.IsEmpty)
        {
            if (previous.Length != length || !TensorPrimitives.IsFiniteAll(previous.Span))
            {
                throw new ArgumentException($"{Name}: the previous aggregate has {previous.Length} values (finite: {TensorPrimitives.IsFiniteAll(previous.Span)}); the updates have {length}.", nameof(context));
            }

            v = previous.ToArray();
        }
        else
        {
            v = Start == ClippingStart.Median ? new CoordinateMedian().Aggregate(updates, weights) : new float[length];
        }

        var n = updates.Count;
        var clipped = 0;
        for (var l = 0; l < Iterations; l++)
        {
            // v ← v (1 − Σ cᵢ) + Σ cᵢ xᵢ with cᵢ = min(1, τ/‖xᵢ − v‖) / n.
            var distances = RobustMath.Distances(updates, v);
            var coefficients = distances.Select(d => Math.Min(1, Tau / d) / n).ToArray();
            clipped = distances.Count(d => d > Tau);
            var sum = RobustMath.WeightedSum(updates, coefficients, length);
            TensorPrimitives.MultiplyAdd(v, (float)(1 - coefficients.Sum()), sum, v);
        }

        context?.Record("robust.clipped", clipped);
        return v;
    }
}

/// <summary>
/// Norm bounding (Sun et al., "Can You Really Backdoor Federated Learning?", 2019): every update longer than the
/// bound is scaled down to it, the bound being fixed or the median norm of the round's updates; the clipped updates
/// then go to an inner rule (default: the weighted mean). Records <c>robust.clipped</c> and <c>robust.norm_bound</c>.
/// </summary>
public sealed class NormBounding : IRobustAggregator
{
    /// <summary>Creates the rule.</summary>
    /// <param name="bound">The L2 bound &gt; 0, or null for the median norm of the cohort.</param>
    /// <param name="inner">The rule applied to the clipped updates; null for the weighted mean.</param>
    public NormBounding(double? bound = null, IRobustAggregator? inner = null)
    {
        if (bound is { } b)
        {
            StrategyGuards.Positive(b, nameof(bound));
        }

        Bound = bound;
        Inner = inner;
    }

    /// <summary>The fixed bound, or null for the median norm.</summary>
    public double? Bound { get; }

    /// <summary>The rule after clipping (null: weighted mean).</summary>
    public IRobustAggregator? Inner { get; }

    /// <inheritdoc />
    public string Name =>
        $"norm_bound:bound={(Bound is { } b ? StrategyGuards.Format(b) : "median")}{(Inner is null ? "" : " > " + Inner.Name)}";

    /// <inheritdoc />
    public float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null)
    {
        var length = RobustMath.CheckInputs(Name, updates, weights);
        var norms = RobustMath.Distances(updates, ReadOnlyMemory<float>.Empty);
        var bound = Bound ?? Selection.Median(norms);
        var scales = norms.Select(norm => norm <= bound ? 1.0 : bound / norm).ToArray();
        context?.Record("robust.clipped", scales.Count(s => s < 1));
        context?.Record("robust.norm_bound", bound);
        if (Inner is null)
        {
            var p = RobustMath.Normalise(weights);
            return RobustMath.WeightedSum(updates, p.Select((pi, i) => pi * scales[i]).ToArray(), length);
        }

        var clipped = new ReadOnlyMemory<float>[updates.Count];
        for (var i = 0; i < clipped.Length; i++)
        {
            if (scales[i] < 1)
            {
                var copy = new float[length];
                TensorPrimitives.Multiply(updates[i].Span, (float)scales[i], copy);
                clipped[i] = copy;
            }
            else
            {
                clipped[i] = updates[i];
            }
        }

        return Inner.Aggregate(clipped, weights, context);
    }
}
