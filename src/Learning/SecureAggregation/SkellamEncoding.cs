using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>Distributed discrete noise under secure aggregation: the Skellam mechanism's parameters.</summary>
public sealed record DistributedNoiseOptions
{
    /// <summary>z: the noise standard deviation of the summed update over its L2 sensitivity (as in DP-FedAvg).</summary>
    public required double NoiseMultiplier { get; init; }

    /// <summary>C: each agent's update is clipped to this L2 norm before scaling and rounding.</summary>
    public required double L2Clip { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> unless z and C are positive and finite.</summary>
    public void Validate()
    {
        if (!(NoiseMultiplier > 0) || !double.IsFinite(NoiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(NoiseMultiplier), NoiseMultiplier, "The noise multiplier must be positive and finite.");
        }

        if (!(L2Clip > 0) || !double.IsFinite(L2Clip))
        {
            throw new ArgumentOutOfRangeException(nameof(L2Clip), L2Clip, "The L2 clipping bound must be positive and finite.");
        }
    }
}

/// <summary>
/// The Skellam mechanism of Agarwal, Kairouz and Liu (NeurIPS 2021) in the SecAgg+ ring Z_{2^b}: an agent clips its
/// update to L2 norm C, scales it by γ, rounds every coordinate stochastically to an integer (unbiased), adds symmetric
/// Skellam noise of variance μ_i, and reduces the result modulo 2^b (two's complement: wrap-around is modular clipping).
/// The coordinator reads the unmasked ring sum as signed integers and divides by γ.
/// <para>
/// Calibration. A rounded vector has L2 norm at most Δ2 = γC + √d (each coordinate moves by less than 1) and, being
/// integer, L1 norm at most Δ1 = min(√d·Δ2, Δ2²). The sum the coordinator learns must carry Skellam noise of variance
/// μ = (z·Δ2)², which gives the Gaussian mechanism's RDP plus a vanishing correction (<see cref="SkellamAccountant"/>).
/// Each agent adds μ_i = μ / n_min, n_min being the fewest survivors the round accepts: any accepted sum has at least
/// n_min agents' noise, hence variance ≥ μ (more survivors add more noise than needed: the conservative side).
/// </para>
/// <para>
/// Ring fit. γ is the largest value (capped so that γC ≤ 2²⁰) for which the worst-case signal of n_max agents,
/// n_max·(γC + 1), plus <see cref="TailSigmas"/> standard deviations of n_max agents' noise stays below 2^(b−1): the
/// signal can never wrap and the noise wraps with probability below 10⁻¹⁵ per coordinate. A ring too small for a
/// γ with γC ≥ √d (so that rounding at most doubles the sensitivity) is refused.
/// </para>
/// </summary>
public sealed class SkellamEncoding
{
    /// <summary>Standard deviations of the summed noise the ring leaves room for.</summary>
    public const double TailSigmas = 8;

    /// <summary>The cap on γC: beyond it the resolution gains nothing a float update can use, and μ stays a comfortable Poisson mean.</summary>
    public const double MaxScaledClip = 1 << 20;

    private const double ClipMargin = 1e-9;

    private readonly SkellamSampler _noise;

    private SkellamEncoding(int ringBits, int length, int maxAgents, int minSurvivors, DistributedNoiseOptions options, double scale)
    {
        RingBits = ringBits;
        Length = length;
        MaxAgents = maxAgents;
        MinSurvivors = minSurvivors;
        Options = options;
        Scale = scale;
        L2Sensitivity = (scale * options.L2Clip) + Math.Sqrt(length);
        L1Sensitivity = Math.Min(Math.Sqrt(length) * L2Sensitivity, L2Sensitivity * L2Sensitivity);
        TotalVariance = options.NoiseMultiplier * options.NoiseMultiplier * L2Sensitivity * L2Sensitivity;
        AgentVariance = TotalVariance / minSurvivors;
        RingMask = ringBits == 32 ? uint.MaxValue : (1u << ringBits) - 1;
        _noise = new SkellamSampler(AgentVariance);
    }

    /// <summary>b.</summary>
    public int RingBits { get; }

    /// <summary>d: parameters per update.</summary>
    public int Length { get; }

    /// <summary>n_max: the most agents whose sum the ring must hold.</summary>
    public int MaxAgents { get; }

    /// <summary>n_min: the fewest survivors whose sum is unmasked; μ_i = μ / n_min.</summary>
    public int MinSurvivors { get; }

    /// <summary>z and C.</summary>
    public DistributedNoiseOptions Options { get; }

    /// <summary>γ: a float value x becomes the integer ≈ γx.</summary>
    public double Scale { get; }

    /// <summary>Δ2 = γC + √d, the L2 sensitivity of the released integer sum.</summary>
    public double L2Sensitivity { get; }

    /// <summary>Δ1 = min(√d·Δ2, Δ2²), the L1 sensitivity of the released integer sum.</summary>
    public double L1Sensitivity { get; }

    /// <summary>μ = (zΔ2)²: the noise variance per coordinate any accepted sum carries at least.</summary>
    public double TotalVariance { get; }

    /// <summary>μ_i = μ / n_min: the variance each agent adds.</summary>
    public double AgentVariance { get; }

    /// <summary>2^b − 1.</summary>
    public uint RingMask { get; }

    /// <summary>The ledger entry of one release of a sum with this encoding.</summary>
    public PrivacyLedgerEntry LedgerEntry => PrivacyLedgerEntry.Skellam(TotalVariance, L1Sensitivity, L2Sensitivity);

    /// <summary>
    /// The encoding for sums of <paramref name="minSurvivors"/> to <paramref name="maxAgents"/> agents' vectors of
    /// <paramref name="length"/> parameters in a <paramref name="ringBits"/>-bit ring. Throws
    /// <see cref="ArgumentException"/>, saying what to change, when the ring cannot hold them.
    /// </summary>
    public static SkellamEncoding Create(int ringBits, int length, int maxAgents, int minSurvivors, DistributedNoiseOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(ringBits, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ringBits, 32);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(minSurvivors);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAgents, minSurvivors);
        options.Validate();
        var scaledClip = ScaledClip(ringBits, length, maxAgents, minSurvivors, options.NoiseMultiplier);
        var rootD = Math.Sqrt(length);
        if (!(scaledClip >= rootD))
        {
            throw new ArgumentException(
                $"A {ringBits}-bit ring cannot hold the noisy sum of {maxAgents} agents' {length}-parameter updates with noise multiplier " +
                $"{options.NoiseMultiplier} ({minSurvivors} survivors at least): it leaves γ·C = {Math.Max(0, scaledClip):G4}, below √d = {rootD:G4}, " +
                "so rounding would dominate the update. Raise the ring bits, or lower the noise multiplier or the agents per round (bucket size).",
                nameof(ringBits));
        }

        return new SkellamEncoding(ringBits, length, maxAgents, minSurvivors, options, scaledClip / options.L2Clip);
    }

    /// <summary>
    /// The smallest noise multiplier z (to a relative <paramref name="tolerance"/>) for which <paramref name="rounds"/>
    /// releases with the encoding of these parameters stay within (<paramref name="targetEpsilon"/>,
    /// <paramref name="delta"/>)-DP under the Skellam accountant. ε falls as z grows, so bisection between a z that
    /// misses the target and one that meets it converges; the z returned meets it. Throws
    /// <see cref="ArgumentException"/> when the ring cannot hold the noise the target needs.
    /// </summary>
    public static double CalibrateNoise(double targetEpsilon, double delta, long rounds, int ringBits, int length, int maxAgents, int minSurvivors, double l2Clip, double tolerance = 1e-4)
    {
        if (!(targetEpsilon > 0) || !double.IsFinite(targetEpsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(targetEpsilon), targetEpsilon, "The target ε must be positive and finite.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rounds);
        double EpsilonOf(double z)
        {
            var entry = Create(ringBits, length, maxAgents, minSurvivors, new DistributedNoiseOptions { NoiseMultiplier = z, L2Clip = l2Clip }).LedgerEntry with { Steps = rounds };
            return new PrivacyLedger([entry]).Spent(delta).Epsilon;
        }

        // Create throws once the ring cannot hold the noise: the target is out of reach.
        return NoiseCalibration.SmallestMultiplier(EpsilonOf, targetEpsilon, start: 1.0 / 64, tolerance);
    }

    /// <summary>The largest γC for which the ring holds the worst-case signal plus <see cref="TailSigmas"/> noise deviations (capped at <see cref="MaxScaledClip"/>).</summary>
    public static double ScaledClip(int ringBits, int length, int maxAgents, int minSurvivors, double noiseMultiplier)
    {
        // n_max(a + 1) + k·z·√(n_max/n_min)·(a + √d) ≤ 2^(b−1) − 1, solved for a = γC.
        var half = Math.Pow(2, ringBits - 1) - 1;
        var noise = TailSigmas * noiseMultiplier * Math.Sqrt((double)maxAgents / minSurvivors);
        var a = (half - maxAgents - (noise * Math.Sqrt(length))) / (maxAgents + noise);
        return Math.Min(a, MaxScaledClip);
    }

    /// <summary>
    /// Encodes <paramref name="values"/> (d floats; non-finite values count as 0) into <paramref name="destination"/>:
    /// clipped to L2 norm C, scaled by γ, rounded stochastically and noised with draws from <paramref name="random"/>,
    /// reduced mod 2^b. Returns whether the update was clipped.
    /// </summary>
    public bool Encode(ReadOnlySpan<float> values, Span<uint> destination, ChaCha20Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (values.Length != Length || destination.Length != Length)
        {
            throw new ArgumentException($"The update and the destination must have {Length} elements.", nameof(values));
        }

        var squared = 0.0;
        foreach (var v in values)
        {
            if (float.IsFinite(v))
            {
                squared += (double)v * v;
            }
        }

        // Clipped to C(1 − 10⁻⁹): the margin absorbs the float error of the norm, so that ‖γx‖ ≤ γC holds for the
        // vector actually rounded and the sensitivity bound γC + √d is not exceeded by rounding noise.
        var norm = Math.Sqrt(squared);
        var bound = Options.L2Clip * (1 - ClipMargin);
        var clipped = norm > bound;
        var factor = Scale * (clipped ? bound / norm : 1);
        for (var i = 0; i < values.Length; i++)
        {
            var y = float.IsFinite(values[i]) ? values[i] * factor : 0;
            var q = (long)Math.Floor(y + random.NextDouble()) + _noise.Next(random);
            destination[i] = unchecked((uint)q) & RingMask;
        }

        return clipped;
    }

    /// <summary>The float sum from the unmasked ring sum <paramref name="sum"/>: each element read as a signed b-bit integer, over γ.</summary>
    public void Decode(ReadOnlySpan<uint> sum, Span<float> destination)
    {
        if (destination.Length != sum.Length)
        {
            throw new ArgumentException("The destination must have one element per sum element.", nameof(destination));
        }

        for (var i = 0; i < sum.Length; i++)
        {
            destination[i] = (float)(ToInteger(sum[i]) / Scale);
        }
    }

    /// <summary>A ring element read as a signed b-bit integer in [−2^(b−1), 2^(b−1)).</summary>
    public long ToInteger(uint element)
    {
        long value = element & RingMask;
        return value >= (1L << (RingBits - 1)) ? value - (1L << RingBits) : value;
    }
}
