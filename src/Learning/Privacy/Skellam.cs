namespace Federated.Learning.Privacy;

/// <summary>
/// Poisson and symmetric Skellam variates from a <see cref="ChaCha20Random"/>. A symmetric Skellam variate of variance
/// μ is the difference of two independent Poisson(μ/2) variates; the sum of independent Skellam variates is Skellam
/// with the summed variance, which is what lets n agents each add a share of the noise (Agarwal, Kairouz and Liu 2021,
/// "The Skellam mechanism for differentially private federated learning").
/// <para>
/// λ &lt; 10: inversion by sequential search. λ ≥ 10: Hörmann's transformed rejection with squeeze (PTRS, "The
/// transformed rejection method for generating Poisson random variables", 1993), with the acceptance test's
/// log-probability written as δ − k·log1p(δ/λ) − ½·log(2πk) − Stirling(k) (δ = k − λ), which keeps its absolute error
/// near machine precision for any λ up to 2⁵⁰ instead of cancelling terms of size λ·log λ.
/// </para>
/// </summary>
public sealed class PoissonSampler
{
    /// <summary>The largest mean sampled (2⁵⁰): beyond it a double no longer holds every integer near the mean with room to spare.</summary>
    public const double MaxMean = 1125899906842624.0;

    private const double PtrsFrom = 10;
    private readonly double _lambda;
    private readonly double _expMinusLambda;
    private readonly double _a, _b, _logInvAlpha, _vr;

    /// <summary>A sampler of Poisson(<paramref name="lambda"/>), 0 ≤ λ ≤ <see cref="MaxMean"/>.</summary>
    public PoissonSampler(double lambda)
    {
        if (!(lambda is >= 0 and <= MaxMean))
        {
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, $"The Poisson mean must lie in [0, {MaxMean}].");
        }

        _lambda = lambda;
        _expMinusLambda = Math.Exp(-lambda);
        var slam = Math.Sqrt(lambda);
        _b = 0.931 + (2.53 * slam);
        _a = -0.059 + (0.02483 * _b);
        _logInvAlpha = Math.Log(1.1239 + (1.1328 / (_b - 3.4)));
        _vr = 0.9277 - (3.6224 / (_b - 2));
    }

    /// <summary>λ.</summary>
    public double Mean => _lambda;

    /// <summary>One Poisson(λ) variate.</summary>
    public long Next(ChaCha20Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (_lambda == 0)
        {
            return 0;
        }

        if (_lambda < PtrsFrom)
        {
            var u = random.NextDouble();
            long k = 0;
            var p = _expMinusLambda;
            var cumulative = p;
            while (u > cumulative && k < 1000)
            {
                k++;
                p *= _lambda / k;
                cumulative += p;
            }

            return k;
        }

        while (true)
        {
            var u = random.NextDouble() - 0.5;
            var v = random.NextDouble();
            var us = 0.5 - Math.Abs(u);
            var k = (long)Math.Floor((((2 * _a / us) + _b) * u) + _lambda + 0.43);
            if (us >= 0.07 && v <= _vr)
            {
                return k;
            }

            if (k < 0 || (us < 0.013 && v > us))
            {
                continue;
            }

            if (Math.Log(v) + _logInvAlpha - Math.Log((_a / (us * us)) + _b) <= LogProbability(k, _lambda))
            {
                return k;
            }
        }
    }

    /// <summary>log P(K = k) for K ~ Poisson(λ), λ &gt; 0, computed without the cancellation of −λ + k·log λ − log k!.</summary>
    public static double LogProbability(long k, double lambda)
    {
        if (k < 0)
        {
            return double.NegativeInfinity;
        }

        if (k < 10)
        {
            var logFactorial = 0.0;
            for (var i = 2; i <= k; i++)
            {
                logFactorial += Math.Log(i);
            }

            return -lambda + (k * Math.Log(lambda)) - logFactorial;
        }

        // log k! = k log k − k + ½ log(2πk) + 1/(12k) − 1/(360k³) + 1/(1260k⁵) − 1/(1680k⁷) + … (error below 1/(1188k⁹)).
        double kd = k;
        var delta = kd - lambda;
        var inverse = 1 / kd;
        var inverse2 = inverse * inverse;
        var stirling = inverse * ((1.0 / 12) - (inverse2 * ((1.0 / 360) - (inverse2 * ((1.0 / 1260) - (inverse2 / 1680))))));
        return delta - (kd * LogSpace.Log1P(delta / lambda)) - (0.5 * Math.Log(2 * Math.PI * kd)) - stirling;
    }
}

/// <summary>Symmetric Skellam noise: Poisson(μ/2) − Poisson(μ/2), mean 0 and variance μ, integer-valued.</summary>
public sealed class SkellamSampler
{
    private readonly PoissonSampler _poisson;

    /// <summary>A sampler of variance <paramref name="variance"/> (0 ≤ μ ≤ 2·<see cref="PoissonSampler.MaxMean"/>).</summary>
    public SkellamSampler(double variance)
    {
        if (!(variance >= 0) || !double.IsFinite(variance))
        {
            throw new ArgumentOutOfRangeException(nameof(variance), variance, "The Skellam variance must be non-negative and finite.");
        }

        Variance = variance;
        _poisson = new PoissonSampler(variance / 2);
    }

    /// <summary>μ.</summary>
    public double Variance { get; }

    /// <summary>One Skellam variate.</summary>
    public long Next(ChaCha20Random random) => _poisson.Next(random) - _poisson.Next(random);
}

/// <summary>
/// Rényi differential privacy of the Skellam mechanism: an integer vector with L1 sensitivity Δ1 and L2 sensitivity Δ2
/// plus independent symmetric Skellam noise of variance μ on each coordinate is (α, ε(α))-RDP for every integer α &gt; 1
/// with ε(α) = α·Δ2²/(2μ) + min(((2α − 1)·Δ2² + 6·Δ1)/(4μ²), 3·Δ1/(2μ)) (Agarwal, Kairouz and Liu, NeurIPS 2021,
/// Theorem 3.5 / Corollary 3.6). The first term is the Gaussian mechanism's RDP; the second vanishes as μ grows.
/// The bound holds at integer orders only: fractional orders give +∞ (no bound, which can only make ε larger). No
/// amplification by sampling is claimed (q = 1).
/// </summary>
public static class SkellamAccountant
{
    /// <summary>ε(α) of one release; +∞ for a non-integer order, 0 for zero sensitivity.</summary>
    public static double Rdp(double variance, double l1Sensitivity, double l2Sensitivity, double order)
    {
        Check(variance, l1Sensitivity, l2Sensitivity);
        if (!(order > 1))
        {
            throw new ArgumentOutOfRangeException(nameof(order), order, "Rényi orders must be greater than 1.");
        }

        if (!double.IsInteger(order))
        {
            return double.PositiveInfinity;
        }

        if (l2Sensitivity == 0 && l1Sensitivity == 0)
        {
            return 0;
        }

        var l2Squared = l2Sensitivity * l2Sensitivity;
        var gaussian = order * l2Squared / (2 * variance);
        var correction = Math.Min((((2 * order) - 1) * l2Squared + (6 * l1Sensitivity)) / (4 * variance * variance), 3 * l1Sensitivity / (2 * variance));
        return gaussian + correction;
    }

    /// <summary>The RDP curve of <paramref name="steps"/> composed releases over <paramref name="orders"/>.</summary>
    public static double[] Rdp(double variance, double l1Sensitivity, double l2Sensitivity, long steps, IReadOnlyList<double> orders)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var rdp = new double[orders.Count];
        for (var i = 0; i < rdp.Length; i++)
        {
            rdp[i] = steps == 0 ? 0 : steps * Rdp(variance, l1Sensitivity, l2Sensitivity, orders[i]);
        }

        return rdp;
    }

    /// <summary>ε(δ) of <paramref name="steps"/> releases over <paramref name="orders"/> (<see cref="RdpOrders.Default"/> when null).</summary>
    public static PrivacySpent Epsilon(double variance, double l1Sensitivity, double l2Sensitivity, long steps, double delta, IReadOnlyList<double>? orders = null, EpsilonConversion conversion = EpsilonConversion.Balle2020)
    {
        orders ??= RdpOrders.Default;
        return RdpAccountant.Epsilon(orders, Rdp(variance, l1Sensitivity, l2Sensitivity, steps, orders), delta, conversion);
    }

    /// <summary>Throws unless μ is positive and finite and the sensitivities are non-negative and finite.</summary>
    internal static void Check(double variance, double l1Sensitivity, double l2Sensitivity)
    {
        if (!(variance > 0) || !double.IsFinite(variance))
        {
            throw new ArgumentOutOfRangeException(nameof(variance), variance, "The Skellam variance must be positive and finite.");
        }

        if (!(l1Sensitivity >= 0) || !double.IsFinite(l1Sensitivity) || !(l2Sensitivity >= 0) || !double.IsFinite(l2Sensitivity))
        {
            throw new ArgumentOutOfRangeException(nameof(l1Sensitivity), (l1Sensitivity, l2Sensitivity), "The sensitivities must be non-negative and finite.");
        }
    }
}
