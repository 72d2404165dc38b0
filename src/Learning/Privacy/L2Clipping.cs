using System.Numerics.Tensors;

namespace Federated.Learning.Privacy;

/// <summary>What clipping did to one update.</summary>
/// <param name="Norm">The update's L2 norm before clipping.</param>
/// <param name="Factor">The scale applied, min(1, bound / norm) (shrunk by <see cref="L2Clipping.Margin"/> when it is below 1).</param>
public readonly record struct ClipResult(double Norm, double Factor)
{
    /// <summary>Whether the update was scaled down (its norm exceeded the bound).</summary>
    public bool Clipped => Factor < 1;
}

/// <summary>
/// L2 clipping of a model update to a bound C, the sensitivity that differential privacy's noise is scaled to:
/// Δ ← Δ · min(1, C/‖Δ‖). Norms are accumulated in double precision. When the update is clipped the factor is
/// shrunk by a relative <see cref="Margin"/> of 1e-6, so the float32 rounding of the scaled values cannot lift
/// the result's norm above C.
/// </summary>
public static class L2Clipping
{
    /// <summary>The relative safety margin under the bound for clipped updates.</summary>
    public const double Margin = 1e-6;

    private const int Chunk = 1024;

    /// <summary>The L2 norm of <paramref name="vector"/>, summed in double precision.</summary>
    public static double Norm(ReadOnlySpan<float> vector)
    {
        Span<double> wide = stackalloc double[Chunk];
        double sum = 0;
        for (var i = 0; i < vector.Length; i += Chunk)
        {
            var slice = vector.Slice(i, Math.Min(Chunk, vector.Length - i));
            var target = wide[..slice.Length];
            TensorPrimitives.ConvertChecked<float, double>(slice, target);
            sum += TensorPrimitives.SumOfSquares<double>(target);
        }

        return Math.Sqrt(sum);
    }

    /// <summary>The clipping factor for <paramref name="update"/> at <paramref name="bound"/>, without changing it.</summary>
    public static ClipResult Measure(ReadOnlySpan<float> update, double bound)
    {
        CheckBound(bound);
        var norm = Norm(update);
        if (!double.IsFinite(norm))
        {
            throw new ArgumentException("The update has non-finite values; it cannot be clipped.", nameof(update));
        }

        return new ClipResult(norm, norm <= bound ? 1 : bound / norm * (1 - Margin));
    }

    /// <summary>Scales <paramref name="update"/> in place so that its L2 norm is at most <paramref name="bound"/>.</summary>
    public static ClipResult Clip(Span<float> update, double bound)
    {
        var result = Measure(update, bound);
        if (result.Clipped)
        {
            TensorPrimitives.Multiply(update, (float)result.Factor, update);
        }

        return result;
    }

    /// <summary>Throws unless <paramref name="bound"/> is positive and finite.</summary>
    internal static void CheckBound(double bound)
    {
        if (!(bound > 0) || !double.IsFinite(bound))
        {
            throw new ArgumentOutOfRangeException(nameof(bound), bound, "The clipping bound must be positive and finite.");
        }
    }
}
