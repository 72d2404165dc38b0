using Federated.Learning.Privacy;
using Federated.Learning.SecureAggregation;

namespace Federated.Learning.Tests.SecureAggregation;

public sealed class DistributedNoiseTests
{
    private const int Agents = 20;
    private const int Length = 4000;
    private static readonly DistributedNoiseOptions Noise = new() { NoiseMultiplier = 1.0, L2Clip = 1.0 };

    [Fact]
    public void Encode_ZeroUpdate_NoiseVarianceMatchesAgentVariance()
    {
        var encoding = SkellamEncoding.Create(32, 20_000, Agents, 14, Noise);
        var encoded = new uint[20_000];

        encoding.Encode(new float[20_000], encoded, ChaCha20Random.FromSeed("noise"));

        var values = encoded.Select(e => (double)encoding.ToInteger(e)).ToArray();
        var mean = values.Average();
        var variance = values.Sum(v => (v - mean) * (v - mean)) / values.Length;
        Assert.InRange(variance / encoding.AgentVariance, 0.96, 1.04);
        Assert.Equal(encoding.TotalVariance / 14, encoding.AgentVariance, 6);
    }

    [Fact]
    public void Create_Calibration_MatchesTheFormulas()
    {
        var encoding = SkellamEncoding.Create(20, Length, Agents, 10, Noise);

        // 2^19 − 1 ≥ 20(a + 1) + 8·1·√2·(a + √4000): a = γC.
        var a = encoding.Scale * Noise.L2Clip;
        var bound = (Agents * (a + 1)) + (8 * Math.Sqrt(2) * (a + Math.Sqrt(Length)));
        Assert.InRange(bound, (1 << 19) - 2, (1 << 19) - 1);
        Assert.Equal(a + Math.Sqrt(Length), encoding.L2Sensitivity, 9);
        Assert.Equal(Math.Pow(encoding.L2Sensitivity, 2), encoding.TotalVariance, 3);
        Assert.Equal(Math.Min(Math.Sqrt(Length) * encoding.L2Sensitivity, Math.Pow(encoding.L2Sensitivity, 2)), encoding.L1Sensitivity, 6);
    }

    [Fact]
    public void CalibrateNoise_TargetEpsilon_SmallestMultiplierThatMeetsIt()
    {
        var z = SkellamEncoding.CalibrateNoise(8, 1e-5, 30, 32, Length, 10, 6, 1.0);

        double Epsilon(double multiplier) =>
            new PrivacyLedger([SkellamEncoding.Create(32, Length, 10, 6, new DistributedNoiseOptions { NoiseMultiplier = multiplier, L2Clip = 1.0 }).LedgerEntry with { Steps = 30 }]).Spent(1e-5).Epsilon;
        Assert.InRange(Epsilon(z), 7.9, 8.0);
        Assert.True(Epsilon(z * 0.999) > 8);
    }

    [Fact]
    public void CalibrateNoise_TargetOutOfTheRingsReach_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => SkellamEncoding.CalibrateNoise(0.01, 1e-5, 1000, 16, Length, 10, 6, 1.0));
    }

    [Fact]
    public void Create_RingTooSmall_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => SkellamEncoding.Create(12, Length, Agents, 10, Noise));

        Assert.Contains("12-bit ring cannot hold", error.Message, StringComparison.Ordinal);
        Assert.Contains("Raise the ring bits", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(20)]
    public void Run_MinimumSurvivors_RingSumUnmasksExactlyAndDecodesWithTheCalibratedNoise(int ringBits)
    {
        var options = new SecureAggregationOptions { RingBits = ringBits, Degree = 12, Threshold = 6, Noise = Noise, MinSurvivors = 14 };
        var scenario = new SecureAggregationScenario
        {
            Agents = Agents,
            Length = Length,
            Options = options,
            Seed = $"skellam-{ringBits}",
            Dropouts = new Dictionary<SecureAggregationStage, double> { [SecureAggregationStage.MaskedInput] = 0.3 },
        };

        var run = InMemorySecureAggregation.Run(scenario, Input);

        Assert.Equal(14, run.Result.Survivors.Length);
        Assert.Equal(run.PlaintextRingSum, run.Result.RingSum);
        var encoding = options.NoiseEncoding(Agents, Length)!;
        var half = 1L << (ringBits - 1);
        Assert.All(run.Result.RingSum, e => Assert.InRange(Math.Abs(encoding.ToInteger(e)), 0, half / 2));

        // Decoded − true sum: the 14 agents' noise (variance 14·μ_i = μ) plus rounding, over γ².
        var truth = new double[Length];
        foreach (var u in run.Result.Survivors)
        {
            var x = Input(u);
            for (var i = 0; i < Length; i++)
            {
                truth[i] += x[i];
            }
        }

        var errors = run.Result.Sum.Select((s, i) => s - truth[i]).ToArray();
        var variance = errors.Sum(e => e * e) / Length;
        var expected = encoding.TotalVariance / (encoding.Scale * encoding.Scale);
        Assert.InRange(variance / expected, 0.93, 1.07);
        Assert.InRange(Math.Abs(errors.Average()), 0, 5 * Math.Sqrt(expected / Length));
    }

    [Fact]
    public void Run_FewerSurvivorsThanTheMinimum_FailsCleanly()
    {
        var options = new SecureAggregationOptions { Degree = 12, Threshold = 6, Noise = Noise, MinSurvivors = 15 };
        var scenario = new SecureAggregationScenario
        {
            Agents = Agents,
            Length = 100,
            Options = options,
            Dropouts = new Dictionary<SecureAggregationStage, double> { [SecureAggregationStage.MaskedInput] = 0.3 },
        };

        var error = Assert.Throws<SecureAggregationException>(() => InMemorySecureAggregation.Run(scenario, u => new float[100]));

        Assert.Contains("fewer than the 15 the round accepts", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unmask_RequestBelowTheMinimum_AgentRefuses()
    {
        var options = new SecureAggregationOptions { Degree = 4, Threshold = 2, Noise = Noise, MinSurvivors = 5 };
        var graph = NeighbourGraph.Create(6, 4, new byte[32]);
        using var identity = AgentIdentity.FromPrivateKey(new byte[32]);
        using var agent = new SecureAggregationAgent(0, 1, graph, options, identity, ChaCha20Random.FromSeed("a"));

        var error = Assert.Throws<SecureAggregationException>(() => agent.Unmask(new UnmaskingRequest([0, 1, 2, 3], [4, 5])));

        Assert.Contains("fewer than the 5", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ResolveMinSurvivors_Defaults()
    {
        Assert.Equal(1, new SecureAggregationOptions().ResolveMinSurvivors(10, 8));
        Assert.Equal(6, new SecureAggregationOptions { Noise = Noise }.ResolveMinSurvivors(10, 8));
        Assert.Equal(15, new SecureAggregationOptions { Noise = Noise }.ResolveMinSurvivors(30, 10));
    }

    // Agent u's update: norm about 0.5 (below the clip), so the true sum is the plain sum.
    private static float[] Input(int u)
    {
        var random = ChaCha20Random.FromSeed($"input-{u}");
        var x = new float[Length];
        for (var i = 0; i < Length; i++)
        {
            x[i] = (float)(random.NextGaussian() * 0.5 / Math.Sqrt(Length));
        }

        return x;
    }
}
