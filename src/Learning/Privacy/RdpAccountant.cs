namespace Federated.Learning.Privacy;

/// <summary>How an RDP curve becomes an (ε, δ) guarantee.</summary>
public enum EpsilonConversion
{
    /// <summary>
    /// Balle, Barthe, Gaboardi, Hsu and Sato 2020 ("Hypothesis testing interpretations and Rényi differential
    /// privacy", Theorem 21): ε = RDP(α) + log((α − 1)/α) − (log δ + log α)/(α − 1). The tighter conversion used
    /// by current Opacus (<c>privacy_analysis.get_privacy_spent</c>) and TF-Privacy (<c>compute_eps</c>).
    /// </summary>
    Balle2020,

    /// <summary>Mironov 2017, Proposition 3: ε = RDP(α) + log(1/δ)/(α − 1).</summary>
    Classic,
}

/// <summary>An (ε, δ) guarantee and the Rényi order that gave it.</summary>
/// <param name="Epsilon">ε (∞ when no order gives a finite bound).</param>
/// <param name="Order">The minimising order α (NaN when ε is ∞).</param>
public readonly record struct PrivacySpent(double Epsilon, double Order);

/// <summary>
/// Rényi differential privacy of the sampled Gaussian mechanism (Poisson sampling with rate q, then Gaussian noise
/// with standard deviation z × sensitivity): Mironov 2017 ("Rényi differential privacy") and Mironov, Talwar and
/// Zhang 2019 ("Rényi differential privacy of the sampled Gaussian mechanism", Section 3.3). Integer orders use the
/// exact binomial expansion of A_α in log space; fractional orders the two-series expansion split at
/// z₀ = σ² log(1/q − 1) + ½, as TF-Privacy's <c>_compute_log_a_frac</c> and Opacus' <c>analysis/rdp.py</c>.
/// RDP composes by addition over steps; <see cref="Epsilon(IReadOnlyList{double}, ReadOnlySpan{double}, double, EpsilonConversion)"/>
/// converts to (ε, δ) and <see cref="CalibrateNoise"/> inverts it.
/// </summary>
public static class RdpAccountant
{
    // The fractional series stops once both new terms are below e^−30 (as TF-Privacy and Opacus); a series that has
    // not converged by then gives no bound at that order (+∞), which only makes ε larger, never smaller.
    private const double SeriesCutoff = -30;
    private const int MaxSeriesTerms = 100_000;

    /// <summary>
    /// RDP at order <paramref name="order"/> of one step with sampling rate <paramref name="sampleRate"/> and noise
    /// multiplier <paramref name="noiseMultiplier"/> (noise standard deviation over L2 sensitivity). 0 when q = 0,
    /// α/(2z²) when q = 1, +∞ when z = 0.
    /// </summary>
    public static double Rdp(double sampleRate, double noiseMultiplier, double order)
    {
        CheckParameters(sampleRate, noiseMultiplier);
        if (!(order > 1))
        {
            throw new ArgumentOutOfRangeException(nameof(order), order, "Rényi orders must be greater than 1.");
        }

        if (sampleRate == 0)
        {
            return 0;
        }

        if (noiseMultiplier == 0 || double.IsPositiveInfinity(order))
        {
            return double.PositiveInfinity;
        }

        if (sampleRate == 1)
        {
            return order / (2 * noiseMultiplier * noiseMultiplier);
        }

        var logA = double.IsInteger(order) && order <= int.MaxValue
            ? LogAInteger(sampleRate, noiseMultiplier, (int)order)
            : LogAFractional(sampleRate, noiseMultiplier, order);
        return logA / (order - 1);
    }

    /// <summary>RDP of <paramref name="steps"/> composed steps at every order of <paramref name="orders"/>.</summary>
    public static double[] Rdp(double sampleRate, double noiseMultiplier, long steps, IReadOnlyList<double> orders)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var rdp = new double[orders.Count];
        for (var i = 0; i < rdp.Length; i++)
        {
            rdp[i] = steps == 0 ? 0 : steps * Rdp(sampleRate, noiseMultiplier, orders[i]);
        }

        return rdp;
    }

    /// <summary>
    /// The smallest ε over <paramref name="orders"/> for which an RDP curve <paramref name="rdp"/> gives
    /// (ε, <paramref name="delta"/>)-DP, and the order that attains it (the first, on ties).
    /// </summary>
    public static PrivacySpent Epsilon(IReadOnlyList<double> orders, ReadOnlySpan<double> rdp, double delta, EpsilonConversion conversion = EpsilonConversion.Balle2020)
    {
        ArgumentNullException.ThrowIfNull(orders);
        if (orders.Count != rdp.Length || orders.Count == 0)
        {
            throw new ArgumentException($"The RDP curve has {rdp.Length} values for {orders.Count} orders (need equal, non-zero counts).", nameof(rdp));
        }

        if (!(delta is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must be in (0, 1).");
        }

        var best = new PrivacySpent(double.PositiveInfinity, double.NaN);
        for (var i = 0; i < rdp.Length; i++)
        {
            var epsilon = EpsilonAt(orders[i], rdp[i], delta, conversion);
            if (epsilon < best.Epsilon)
            {
                best = new PrivacySpent(epsilon, orders[i]);
            }
        }

        return best;
    }

    /// <summary>ε(δ) of <paramref name="steps"/> steps of the sampled Gaussian mechanism over <paramref name="orders"/> (<see cref="RdpOrders.Default"/> when null).</summary>
    public static PrivacySpent Epsilon(double sampleRate, double noiseMultiplier, long steps, double delta, IReadOnlyList<double>? orders = null, EpsilonConversion conversion = EpsilonConversion.Balle2020)
    {
        orders ??= RdpOrders.Default;
        return Epsilon(orders, Rdp(sampleRate, noiseMultiplier, steps, orders), delta, conversion);
    }

    /// <summary>
    /// The smallest noise multiplier z (to a relative <paramref name="tolerance"/>) for which <paramref name="steps"/>
    /// steps with sampling rate <paramref name="sampleRate"/> stay within (<paramref name="targetEpsilon"/>,
    /// <paramref name="delta"/>)-DP. ε decreases in z, so bisection between a z that misses the target and one that
    /// meets it converges; the returned z always meets it. 0 when no noise is needed (q = 0 or no steps).
    /// </summary>
    public static double CalibrateNoise(double targetEpsilon, double sampleRate, long steps, double delta, IReadOnlyList<double>? orders = null, EpsilonConversion conversion = EpsilonConversion.Balle2020, double tolerance = 1e-6)
    {
        if (!(targetEpsilon > 0) || !double.IsFinite(targetEpsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(targetEpsilon), targetEpsilon, "The target ε must be positive and finite.");
        }

        if (!(tolerance is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "The tolerance must be in (0, 1).");
        }

        CheckParameters(sampleRate, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        orders ??= RdpOrders.Default;
        if (sampleRate == 0 || steps == 0)
        {
            return 0;
        }

        double EpsilonOf(double z) => Epsilon(sampleRate, z, steps, delta, orders, conversion).Epsilon;

        return NoiseCalibration.SmallestMultiplier(EpsilonOf, targetEpsilon, start: 1, tolerance, limit: 1e6,
            $"No noise multiplier up to 1e6 reaches ε = {targetEpsilon} at δ = {delta} over {steps} steps with q = {sampleRate}; widen the order grid or relax the target.");
    }

    /// <summary>ε at one order, or +∞ where the order gives no bound.</summary>
    private static double EpsilonAt(double order, double rdp, double delta, EpsilonConversion conversion)
    {
        if (double.IsNaN(rdp) || double.IsPositiveInfinity(rdp) || !(order > 1))
        {
            return double.PositiveInfinity;
        }

        if (rdp < 0)
        {
            throw new ArgumentException($"RDP must be non-negative (order {order}: {rdp}).", nameof(rdp));
        }

        switch (conversion)
        {
            case EpsilonConversion.Classic:
                return rdp - (Math.Log(delta) / (order - 1));
            case EpsilonConversion.Balle2020:
                // δ ≤ √(1 − exp(−KL)) and KL ≤ RDP(α): when δ² ≥ 1 − exp(−RDP) the guarantee holds with ε = 0
                // (TF-Privacy's shortcut; it covers RDP = 0).
                if ((delta * delta) + LogSpace.ExpM1(-rdp) >= 0)
                {
                    return 0;
                }

                var epsilon = rdp + Math.Log((order - 1) / order) - ((Math.Log(delta) + Math.Log(order)) / (order - 1));
                return Math.Max(0, epsilon);
            default:
                throw new ArgumentOutOfRangeException(nameof(conversion), conversion, "Unknown conversion.");
        }
    }

    /// <summary>log A_α for integer α: log Σᵢ C(α, i) qⁱ (1 − q)^(α − i) exp((i² − i)/(2σ²)).</summary>
    private static double LogAInteger(double q, double sigma, int alpha)
    {
        var logQ = Math.Log(q);
        var log1MinusQ = Math.Log(1 - q);
        var twoSigmaSquared = 2 * sigma * sigma;
        var binomial = new LogBinomial(alpha);
        var logA = double.NegativeInfinity;
        for (var i = 0; i <= alpha; i++)
        {
            var term = binomial.LogAbs + (i * logQ) + ((alpha - i) * log1MinusQ) + (((double)i * i - i) / twoSigmaSquared);
            logA = LogSpace.Add(logA, term);
            binomial.Next();
        }

        return logA;
    }

    /// <summary>
    /// log A_α for fractional α: the two integrals of A_α over (−∞, z₀] and [z₀, ∞) as alternating binomial series,
    /// each term weighted by a Gaussian tail ½ erfc(·/(√2 σ)).
    /// </summary>
    private static double LogAFractional(double q, double sigma, double alpha)
    {
        var logQ = Math.Log(q);
        var log1MinusQ = Math.Log(1 - q);
        var twoSigmaSquared = 2 * sigma * sigma;
        var sqrt2Sigma = Math.Sqrt(2) * sigma;
        var logHalf = Math.Log(0.5);
        var z0 = (sigma * sigma * Math.Log((1 / q) - 1)) + 0.5;
        var binomial = new LogBinomial(alpha);
        double logA0 = double.NegativeInfinity, logA1 = double.NegativeInfinity;
        for (var i = 0; i < MaxSeriesTerms; i++)
        {
            var j = alpha - i;
            var logT0 = binomial.LogAbs + (i * logQ) + (j * log1MinusQ);
            var logT1 = binomial.LogAbs + (j * logQ) + (i * log1MinusQ);
            var logE0 = logHalf + ErrorFunction.LogErfc((i - z0) / sqrt2Sigma);
            var logE1 = logHalf + ErrorFunction.LogErfc((z0 - j) / sqrt2Sigma);
            var logS0 = logT0 + (((double)i * i - i) / twoSigmaSquared) + logE0;
            var logS1 = logT1 + (((j * j) - j) / twoSigmaSquared) + logE1;
            if (binomial.Positive)
            {
                logA0 = LogSpace.Add(logA0, logS0);
                logA1 = LogSpace.Add(logA1, logS1);
            }
            else
            {
                logA0 = LogSpace.Subtract(logA0, logS0);
                logA1 = LogSpace.Subtract(logA1, logS1);
            }

            if (Math.Max(logS0, logS1) < SeriesCutoff)
            {
                return LogSpace.Add(logA0, logA1);
            }

            binomial.Next();
        }

        return double.PositiveInfinity;
    }

    /// <summary>Throws unless q ∈ [0, 1] and z is non-negative and finite.</summary>
    internal static void CheckParameters(double sampleRate, double noiseMultiplier)
    {
        if (!(sampleRate is >= 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(sampleRate), sampleRate, "The sampling rate q must be in [0, 1].");
        }

        if (!(noiseMultiplier >= 0) || !double.IsFinite(noiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "The noise multiplier must be non-negative and finite.");
        }
    }

    /// <summary>
    /// The generalised binomial coefficients C(α, 0), C(α, 1), … by the recurrence C(α, i+1) = C(α, i)(α − i)/(i + 1),
    /// as a sign and a logarithm. The running product is kept in double (exact while the coefficients are integers
    /// below 2⁵³) and folded into the logarithm only when it grows large, so the error does not grow with i.
    /// </summary>
    private struct LogBinomial(double alpha)
    {
        private const double Rescale = 1e280;
        private double _mantissa = 1;
        private double _logScale;
        private int _i;

        /// <summary>log |C(α, i)|.</summary>
        public readonly double LogAbs => _logScale + Math.Log(Math.Abs(_mantissa));

        /// <summary>Whether C(α, i) is positive (it is zero only for integer α and i &gt; α, never reached here).</summary>
        public readonly bool Positive => _mantissa > 0;

        public void Next()
        {
            _mantissa = _mantissa * (alpha - _i) / (_i + 1);
            _i++;
            if (Math.Abs(_mantissa) > Rescale || (Math.Abs(_mantissa) < 1 / Rescale && _mantissa != 0))
            {
                _logScale += Math.Log(Math.Abs(_mantissa));
                _mantissa = Math.Sign(_mantissa);
            }
        }
    }
}
