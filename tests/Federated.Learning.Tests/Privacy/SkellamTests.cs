using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class SkellamTests
{
    [Theory]
    [InlineData(3.0)]
    [InlineData(50.0)]
    [InlineData(1e6)]
    [InlineData(1e11)]
    public void SkellamSampler_ManyDraws_EmpiricalVarianceMatchesMu(double mu)
    {
        var sampler = new SkellamSampler(mu);
        var random = ChaCha20Random.FromSeed($"skellam-{mu}");
        const int Draws = 100_000;
        double sum = 0, squares = 0;

        for (var i = 0; i < Draws; i++)
        {
            double x = sampler.Next(random);
            sum += x;
            squares += x * x;
        }

        var mean = sum / Draws;
        var variance = (squares / Draws) - (mean * mean);
        Assert.InRange(mean, -5 * Math.Sqrt(mu / Draws), 5 * Math.Sqrt(mu / Draws));
        Assert.InRange(variance / mu, 0.97, 1.03);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(9.5)]
    [InlineData(12.0)]
    [InlineData(4000.0)]
    public void PoissonSampler_ManyDraws_MeanAndVarianceMatchLambda(double lambda)
    {
        var sampler = new PoissonSampler(lambda);
        var random = ChaCha20Random.FromSeed($"poisson-{lambda}");
        const int Draws = 100_000;
        double sum = 0, squares = 0;

        for (var i = 0; i < Draws; i++)
        {
            double x = sampler.Next(random);
            Assert.True(x >= 0);
            sum += x;
            squares += x * x;
        }

        var mean = sum / Draws;
        Assert.InRange(mean, lambda - (5 * Math.Sqrt(lambda / Draws)), lambda + (5 * Math.Sqrt(lambda / Draws)));
        Assert.InRange(((squares / Draws) - (mean * mean)) / lambda, 0.97, 1.03);
    }

    [Fact]
    public void LogProbability_AgreesWithTheDirectFormula()
    {
        const double Lambda = 30;
        for (var k = 0; k <= 80; k++)
        {
            var logFactorial = Enumerable.Range(2, Math.Max(0, k - 1)).Sum(i => Math.Log(i));
            var direct = -Lambda + (k * Math.Log(Lambda)) - logFactorial;

            Assert.Equal(direct, PoissonSampler.LogProbability(k, Lambda), 9);
        }
    }

    [Fact]
    public void Rdp_HandComputedCase()
    {
        // μ = 100, Δ2 = 2, Δ1 = 4. α = 2: 2·4/200 + min((3·4 + 24)/(4·100²), 3·4/200) = 0.04 + min(0.0009, 0.06) = 0.0409.
        // α = 3: 3·4/200 + min((5·4 + 24)/40000, 0.06) = 0.06 + 0.0011 = 0.0611.
        Assert.Equal(0.0409, SkellamAccountant.Rdp(100, 4, 2, 2), 12);
        Assert.Equal(0.0611, SkellamAccountant.Rdp(100, 4, 2, 3), 12);

        // Small μ: the second branch of the minimum. μ = 1, Δ2 = 1, Δ1 = 1, α = 2: 1 + min((3 + 6)/4, 1.5) = 2.5.
        Assert.Equal(2.5, SkellamAccountant.Rdp(1, 1, 1, 2), 12);
    }

    [Fact]
    public void Epsilon_OneOrder_HandComputedConversion()
    {
        // Balle et al. 2020 at α = 2, δ = 1e-5: ε = 0.0409 + log(1/2) − (log 1e-5 + log 2) = 10.167531103...
        var spent = SkellamAccountant.Epsilon(100, 4, 2, 1, 1e-5, [2.0]);

        Assert.Equal(0.0409 + Math.Log(0.5) - (Math.Log(1e-5) + Math.Log(2)), spent.Epsilon, 12);
        Assert.Equal(10.167531103, spent.Epsilon, 6);
        Assert.Equal(2.0, spent.Order);
    }

    [Fact]
    public void Rdp_FractionalOrder_GivesNoBound()
    {
        Assert.True(double.IsPositiveInfinity(SkellamAccountant.Rdp(100, 4, 2, 2.5)));
    }

    [Fact]
    public void Epsilon_LargeVariance_ApproachesTheGaussianMechanism()
    {
        // μ = (zΔ2)² with Δ2 = 10⁶ and z = 1.1: the correction term is negligible and ε is the Gaussian one (q = 1).
        const double Sensitivity = 1e6, Z = 1.1;
        var skellam = SkellamAccountant.Epsilon(Z * Z * Sensitivity * Sensitivity, Sensitivity * 1000, Sensitivity, 50, 1e-5, RdpOrders.TensorFlowPrivacy);
        var gaussian = RdpAccountant.Epsilon(1, Z, 50, 1e-5, RdpOrders.TensorFlowPrivacy.Where(double.IsInteger).ToList());

        Assert.Equal(gaussian.Epsilon, skellam.Epsilon, 4);
    }

    [Fact]
    public void Ledger_SkellamEntries_MergeRoundTripAndComposeWithGaussian()
    {
        var ledger = new PrivacyLedger();
        ledger.Record(0.5, 1.2, 3);
        ledger.RecordSkellam(1e8, 3e5, 1e4);
        ledger.RecordSkellam(1e8, 3e5, 1e4);

        var restored = PrivacyLedger.FromJson(ledger.ToJson());

        Assert.Equal(2, ledger.Entries.Count);
        Assert.Equal(2, ledger.Entries[1].Steps);
        Assert.Equal(ledger.Entries, restored.Entries);
        var expected = RdpAccountant.Rdp(0.5, 1.2, 3, ledger.Orders).Zip(SkellamAccountant.Rdp(1e8, 3e5, 1e4, 2, ledger.Orders), (a, b) => a + b).ToArray();
        Assert.Equal(RdpAccountant.Epsilon(ledger.Orders, expected, 1e-5), restored.Spent(1e-5));
        Assert.Contains("\"skellam_mu\"", ledger.ToJson(), StringComparison.Ordinal);
        Assert.DoesNotContain("skellam", new PrivacyLedger([new PrivacyLedgerEntry(0.1, 1, 1)]).ToJson(), StringComparison.Ordinal);
    }
}
