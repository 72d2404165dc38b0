using Federated.Learning.Privacy;
using Xunit.Abstractions;

namespace Federated.Learning.Tests.Privacy;

/// <summary>The accountant against published values; <c>--logger "console;verbosity=detailed"</c> prints them.</summary>
public sealed class RdpAccountantTests(ITestOutputHelper output)
{
    private const double PublishedTolerance = 1e-9;

    [Fact]
    public void Epsilon_OpacusAccountantTest_ReproducesPublishedValue()
    {
        // opacus/tests/accountants_test.py, test_rdp_accountant: σ = 1.5, q = 0.04, steps = int(90 / 0.04) = 2250,
        // δ = 1e-5, Opacus' default orders, get_privacy_spent (Balle et al. 2020) → 7.32911117143.
        var spent = RdpAccountant.Epsilon(0.04, 1.5, 2250, 1e-5, RdpOrders.Opacus, EpsilonConversion.Balle2020);

        Report(7.32911117143, spent);
        AssertRelative(7.32911117143, spent.Epsilon, PublishedTolerance);
    }

    [Theory]
    // TF-Privacy compute_dp_sgd_privacy tests: (n, batch, σ, epochs, δ) → (ε, order); q = batch/n and
    // steps = ceil(epochs · n / batch), over TF-Privacy's orders, with compute_eps (Balle et al. 2020).
    [InlineData(60_000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19)]
    [InlineData(100_000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13)]
    public void Epsilon_TensorFlowPrivacyTests_ReproducePublishedValues(int n, int batch, double sigma, int epochs, double delta, double expected, double order)
    {
        var q = batch / (double)n;
        var steps = (long)Math.Ceiling(epochs * (double)n / batch);

        var spent = RdpAccountant.Epsilon(q, sigma, steps, delta, RdpOrders.TensorFlowPrivacy, EpsilonConversion.Balle2020);

        Report(expected, spent);
        AssertRelative(expected, spent.Epsilon, PublishedTolerance);
        Assert.Equal(order, spent.Order);
    }

    [Fact]
    public void Epsilon_ClassicConversion_IsLooserThanBalle()
    {
        var balle = RdpAccountant.Epsilon(0.04, 1.5, 2250, 1e-5, RdpOrders.Opacus, EpsilonConversion.Balle2020);
        var classic = RdpAccountant.Epsilon(0.04, 1.5, 2250, 1e-5, RdpOrders.Opacus, EpsilonConversion.Classic);

        Assert.True(classic.Epsilon > balle.Epsilon, $"classic {classic.Epsilon} should exceed Balle {balle.Epsilon}");
    }

    [Fact]
    public void Epsilon_ClassicConversion_MatchesTheFormulaAtTheOptimalOrder()
    {
        var orders = new[] { 2.0, 8, 32 };
        var rdp = RdpAccountant.Rdp(0.01, 1.1, 1000, orders);

        var spent = RdpAccountant.Epsilon(orders, rdp, 1e-5, EpsilonConversion.Classic);

        var expected = Enumerable.Range(0, 3).Min(i => rdp[i] + (Math.Log(1 / 1e-5) / (orders[i] - 1)));
        Assert.Equal(expected, spent.Epsilon, 12);
        Assert.Contains(spent.Order, orders);
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(3.5)]
    [InlineData(17.0)]
    public void Rdp_FullBatch_IsTheGaussianMechanism(double order)
    {
        // q = 1: no amplification, RDP(α) = α / (2σ²).
        Assert.Equal(order / (2 * 0.8 * 0.8), RdpAccountant.Rdp(1, 0.8, order), 14);
    }

    [Fact]
    public void Rdp_NoSampling_IsZero_AndNoNoise_IsInfinite()
    {
        Assert.Equal(0, RdpAccountant.Rdp(0, 1, 4));
        Assert.Equal(double.PositiveInfinity, RdpAccountant.Rdp(0.1, 0, 4));
        Assert.Equal(0, RdpAccountant.Epsilon(0, 1, 100, 1e-5).Epsilon);
        Assert.Equal(double.PositiveInfinity, RdpAccountant.Epsilon(0.1, 0, 100, 1e-5).Epsilon);
    }

    [Fact]
    public void Rdp_FractionalOrders_AgreeWithNeighbouringIntegerOrders()
    {
        // RDP is continuous and non-decreasing in α: the fractional series (a different algorithm) must land
        // between the exact integer values around it.
        const double Q = 0.05, Sigma = 1.2;
        for (var a = 2; a < 12; a++)
        {
            var low = RdpAccountant.Rdp(Q, Sigma, a);
            var middle = RdpAccountant.Rdp(Q, Sigma, a + 0.5);
            var high = RdpAccountant.Rdp(Q, Sigma, a + 1);
            Assert.True(low <= middle && middle <= high, $"α = {a}.5: {low} ≤ {middle} ≤ {high} fails");
        }

        // And a hair off an integer order gives (almost) the integer value.
        Assert.Equal(RdpAccountant.Rdp(Q, Sigma, 4), RdpAccountant.Rdp(Q, Sigma, 4 + 1e-9), 7);
    }

    [Fact]
    public void Epsilon_GrowsWithSteps()
    {
        var previous = 0.0;
        foreach (var steps in new long[] { 1, 10, 100, 1000, 10_000 })
        {
            var epsilon = RdpAccountant.Epsilon(0.01, 1.1, steps, 1e-5).Epsilon;
            Assert.True(epsilon > previous, $"ε({steps} steps) = {epsilon} should exceed {previous}");
            previous = epsilon;
        }
    }

    [Fact]
    public void Epsilon_ShrinksWithNoise()
    {
        var previous = double.PositiveInfinity;
        foreach (var sigma in new[] { 0.6, 0.8, 1.0, 1.5, 3.0, 10.0 })
        {
            var epsilon = RdpAccountant.Epsilon(0.01, sigma, 1000, 1e-5).Epsilon;
            Assert.True(epsilon < previous, $"ε(σ = {sigma}) = {epsilon} should be below {previous}");
            previous = epsilon;
        }
    }

    [Fact]
    public void Rdp_Composition_IsLinearInSteps()
    {
        var one = RdpAccountant.Rdp(0.02, 1.3, 1, RdpOrders.Opacus);
        var many = RdpAccountant.Rdp(0.02, 1.3, 500, RdpOrders.Opacus);

        for (var i = 0; i < one.Length; i++)
        {
            Assert.Equal(500 * one[i], many[i], 10);
        }
    }

    [Theory]
    // The Fashion-MNIST grid: Poisson rate 0.1, 100 rounds, δ = 1e-5, ε ∈ {1, 2, 4, 8}.
    [InlineData(1.0, 0.1, 100)]
    [InlineData(2.0, 0.1, 100)]
    [InlineData(4.0, 0.1, 100)]
    [InlineData(8.0, 0.1, 100)]
    [InlineData(8.0, 0.04, 2250)]
    [InlineData(0.5, 0.01, 5000)]
    public void CalibrateNoise_MeetsTheTarget_AndIsTheSmallestToTolerance(double target, double q, long steps)
    {
        const double Tolerance = 1e-6;

        var z = RdpAccountant.CalibrateNoise(target, q, steps, 1e-5, tolerance: Tolerance);
        output.WriteLine(FormattableString.Invariant($"target ε = {target} (δ = 1e-5, q = {q}, {steps} steps): z = {z:F6}"));

        var at = RdpAccountant.Epsilon(q, z, steps, 1e-5).Epsilon;
        var below = RdpAccountant.Epsilon(q, z * (1 - (2 * Tolerance)), steps, 1e-5).Epsilon;
        Assert.True(at <= target, $"ε(z = {z}) = {at} exceeds the target {target}");
        Assert.True(below > target, $"ε(z = {z * (1 - (2 * Tolerance))}) = {below} still meets {target}: z is not the smallest");
        Assert.True(target - at < 1e-3 * target, $"ε(z) = {at} is far below the target {target}");
    }

    [Fact]
    public void CalibrateNoise_NoSampling_NeedsNoNoise()
    {
        Assert.Equal(0, RdpAccountant.CalibrateNoise(1, 0, 100, 1e-5));
    }

    [Fact]
    public void Rdp_InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.Rdp(1.5, 1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.Rdp(0.1, -1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.Rdp(0.1, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.Epsilon(0.1, 1, 10, 0));
        Assert.Throws<ArgumentException>(() => RdpAccountant.Epsilon([2.0, 3.0], [1.0], 1e-5));
    }

    private void Report(double expected, PrivacySpent spent) =>
        output.WriteLine(FormattableString.Invariant($"expected ε = {expected:R}, computed ε = {spent.Epsilon:R} at order {spent.Order:R}, relative error {Math.Abs(spent.Epsilon - expected) / expected:E2}"));

    internal static void AssertRelative(double expected, double actual, double tolerance)
    {
        var relative = Math.Abs(actual - expected) / Math.Abs(expected);
        Assert.True(relative <= tolerance, $"expected {expected:R}, got {actual:R} (relative error {relative:E2} > {tolerance:E0})");
    }
}
