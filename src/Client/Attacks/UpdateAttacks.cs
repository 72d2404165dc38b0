using Federated.Learning.Data.Partitioning;

namespace Federated.Client.Attacks;

/// <summary>
/// The attacks' arithmetic on model updates (deltas), as pure functions over arrays: no I/O, no state, inputs never
/// modified. Means and deviations accumulate in double. <see cref="AttackStage"/> decides which one runs and with
/// what.
/// </summary>
internal static class UpdateAttacks
{
    /// <summary>Sign flip: −<paramref name="scale"/>·Δ.</summary>
    public static float[] SignFlip(ReadOnlySpan<float> delta, double scale) => Scale(delta, -scale);

    /// <summary>Scaling (boosting): <paramref name="scale"/>·Δ.</summary>
    public static float[] Scale(ReadOnlySpan<float> delta, double scale)
    {
        var result = new float[delta.Length];
        for (var i = 0; i < delta.Length; i++)
        {
            result[i] = (float)(scale * delta[i]);
        }

        return result;
    }

    /// <summary>
    /// Gaussian noise: a vector of <paramref name="length"/> independent N(0, σ²) values that replaces the update
    /// (the honest delta is not sent at all), drawn from a <see cref="StableRandom"/> seeded by <paramref name="seed"/>.
    /// </summary>
    public static float[] Gaussian(int length, double sigma, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var random = new StableRandom(seed);
        var result = new float[length];
        for (var i = 0; i < length; i++)
        {
            result[i] = (float)(sigma * random.Normal());
        }

        return result;
    }

    /// <summary>
    /// The coordinate-wise mean μ and population standard deviation σ (divided by n, as NumPy's <c>std</c>) of
    /// <paramref name="updates"/>, unweighted.
    /// </summary>
    /// <exception cref="ArgumentException">No updates, or updates of different lengths.</exception>
    public static (float[] Mean, float[] Deviation) MeanAndDeviation(IReadOnlyList<ReadOnlyMemory<float>> updates)
    {
        var length = CheckUpdates(updates);
        var sum = new double[length];
        var squares = new double[length];
        foreach (var update in updates)
        {
            var values = update.Span;
            for (var i = 0; i < length; i++)
            {
                sum[i] += values[i];
                squares[i] += (double)values[i] * values[i];
            }
        }

        var n = (double)updates.Count;
        var mean = new float[length];
        var deviation = new float[length];
        for (var i = 0; i < length; i++)
        {
            var m = sum[i] / n;
            mean[i] = (float)m;
            deviation[i] = (float)Math.Sqrt(Math.Max(0, (squares[i] / n) - (m * m)));
        }

        return (mean, deviation);
    }

    /// <summary>
    /// "A little is enough" (Baruch et al., NeurIPS 2019): every coordinate j becomes μⱼ − z·σⱼ over
    /// <paramref name="honest"/> (see <see cref="MeanAndDeviation"/>), a shift small enough to stay within the
    /// spread of the honest updates, so that median-, trimming- and distance-based rules keep it.
    /// </summary>
    public static float[] Alie(IReadOnlyList<ReadOnlyMemory<float>> honest, double z)
    {
        var (mean, deviation) = MeanAndDeviation(honest);
        for (var i = 0; i < mean.Length; i++)
        {
            mean[i] = (float)(mean[i] - (z * deviation[i]));
        }

        return mean;
    }

    /// <summary>
    /// The z of "A little is enough" for <paramref name="n"/> workers of which <paramref name="f"/> collude:
    /// s = ⌊n/2 + 1⌋ − f honest workers must be out-voted, and z = Φ⁻¹((n − s) / n).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">n &lt; 2, f outside 1…n − 1, or s ≤ 0 (f ≥ ⌊n/2 + 1⌋: a majority needs no disguise).</exception>
    public static double AlieZ(int n, int f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 2);
        if (f < 1 || f >= n)
        {
            throw new ArgumentOutOfRangeException(nameof(f), f, $"The attackers must number between 1 and n − 1 = {n - 1}.");
        }

        var s = (n / 2) + 1 - f;
        if (s <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(f), f, $"With f = {f} of n = {n} the attackers are a majority (s = ⌊n/2 + 1⌋ − f = {s} ≤ 0); give z explicitly.");
        }

        return InverseNormal((double)(n - s) / n);
    }

    /// <summary>
    /// Inner-product manipulation (Xie et al., UAI 2020): −ε times the unweighted mean of <paramref name="honest"/>,
    /// so that the aggregate's inner product with the true mean turns negative once the attackers are kept.
    /// </summary>
    public static float[] Ipm(IReadOnlyList<ReadOnlyMemory<float>> honest, double epsilon)
    {
        var (mean, _) = MeanAndDeviation(honest);
        for (var i = 0; i < mean.Length; i++)
        {
            mean[i] = (float)(-epsilon * mean[i]);
        }

        return mean;
    }

    /// <summary>Label flipping: y → C − 1 − y for <paramref name="classes"/> classes C.</summary>
    public static int FlipLabel(int label, int classes)
    {
        if ((uint)label >= (uint)classes)
        {
            throw new ArgumentOutOfRangeException(nameof(label), label, $"Label outside 0…{classes - 1}.");
        }

        return classes - 1 - label;
    }

    /// <summary>
    /// Φ⁻¹(p), the standard normal quantile, by P. J. Acklam's rational approximation (relative error below
    /// 1.2·10⁻⁹ over (0, 1)).
    /// </summary>
    public static double InverseNormal(double p)
    {
        if (!(p is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "The probability must lie strictly between 0 and 1.");
        }

        const double Low = 0.02425;
        if (p is < Low or > 1 - Low)
        {
            // The tails: x = C(q) / D(q) with q = √(−2 ln p) (or of 1 − p, with the sign turned).
            var q = Math.Sqrt(-2 * Math.Log(Math.Min(p, 1 - p)));
            var x = Polynomial(q, [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00])
                / Polynomial(q, [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00, 1]);
            return p < Low ? x : -x;
        }

        // The centre: x = r·A(r²) / B(r²) with r = p − ½.
        var r = p - 0.5;
        var t = r * r;
        return r * Polynomial(t, [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00])
            / Polynomial(t, [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01, 1]);
    }

    /// <summary>Horner's rule; <paramref name="coefficients"/> from the highest power down.</summary>
    private static double Polynomial(double x, ReadOnlySpan<double> coefficients)
    {
        var value = 0.0;
        foreach (var c in coefficients)
        {
            value = (value * x) + c;
        }

        return value;
    }

    private static int CheckUpdates(IReadOnlyList<ReadOnlyMemory<float>> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0)
        {
            throw new ArgumentException("At least one update is needed.", nameof(updates));
        }

        var length = updates[0].Length;
        if (updates.Any(u => u.Length != length))
        {
            throw new ArgumentException($"The updates differ in length ({string.Join(", ", updates.Select(u => u.Length).Distinct())}).", nameof(updates));
        }

        return length;
    }
}
