using Federated.Learning.Privacy;
using Federated.Learning.SecureAggregation;

namespace Federated.Learning.Tests.SecureAggregation;

public sealed class SecureAggregationProtocolTests
{
    private const int Agents = 100;
    private const int Length = 1000;

    // A sparse SecAgg+ graph sized for 30 % dropouts in one stage: 40 neighbours, threshold 20.
    private static readonly SecureAggregationOptions Sparse = new() { Degree = 40, Threshold = 20, ClipRange = 0.5 };

    public static TheoryData<SecureAggregationStage, double> Dropouts()
    {
        var data = new TheoryData<SecureAggregationStage, double> { { SecureAggregationStage.AdvertiseKeys, 0.0 } };
        foreach (var stage in Enum.GetValues<SecureAggregationStage>())
        {
            data.Add(stage, 0.1);
            data.Add(stage, 0.3);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Dropouts))]
    public void Run_DropoutsInOneStage_UnmaskedSumEqualsPlaintextRingSum(SecureAggregationStage stage, double rate)
    {
        var scenario = Scenario(Sparse) with { Dropouts = new Dictionary<SecureAggregationStage, double> { [stage] = rate } };

        var run = InMemorySecureAggregation.Run(scenario, Input);

        Assert.Equal(run.PlaintextRingSum, run.Result.RingSum);
        var expectedSurvivors = stage == SecureAggregationStage.Unmasking ? Agents : Agents - (int)Math.Round(rate * Agents);
        Assert.Equal(expectedSurvivors, run.Result.Survivors.Length);
        Assert.Equal(stage == SecureAggregationStage.MaskedInput ? (int)Math.Round(rate * Agents) : 0, run.Result.Dropped.Length);
        AssertCloseToFloatSum(run, scenario.Options);
    }

    [Fact]
    public void Run_TenPercentDropoutsAtEveryStage_CompleteGraph_ExactSum()
    {
        var options = new SecureAggregationOptions { Degree = Agents - 1, Threshold = 40, StochasticRounding = false };
        var everyStage = Enum.GetValues<SecureAggregationStage>().ToDictionary(s => s, _ => 0.1);

        var run = InMemorySecureAggregation.Run(Scenario(options) with { Dropouts = everyStage }, Input);

        Assert.Equal(run.PlaintextRingSum, run.Result.RingSum);
        Assert.NotEmpty(run.Result.Dropped);
    }

    [Fact]
    public void Run_SmallRing_SumStaysExact()
    {
        var options = Sparse with { RingBits = 16 };

        var run = InMemorySecureAggregation.Run(Scenario(options) with
        {
            Dropouts = new Dictionary<SecureAggregationStage, double> { [SecureAggregationStage.MaskedInput] = 0.1 },
        }, Input);

        Assert.Equal(run.PlaintextRingSum, run.Result.RingSum);
        Assert.All(run.Result.RingSum, v => Assert.True(v < (1u << 16)));
    }

    [Fact]
    public void Run_TamperedShares_DetectedAndSenderExcluded()
    {
        var scenario = Scenario(Sparse) with { TamperedShares = new HashSet<int> { 7, 42 } };

        var run = InMemorySecureAggregation.Run(scenario, Input);

        Assert.Equal([7, 42], run.Result.Excluded);
        Assert.DoesNotContain(7, run.Result.Survivors);
        Assert.DoesNotContain(42, run.Result.Survivors);
        Assert.Equal([7, 42], run.Result.Dropped);
        Assert.Equal(run.PlaintextRingSum, run.Result.RingSum);
    }

    [Fact]
    public void Run_BadSignature_DetectedAndAgentExcluded()
    {
        var scenario = Scenario(Sparse) with { BadSignatures = new HashSet<int> { 3 } };

        var run = InMemorySecureAggregation.Run(scenario, Input);

        Assert.Equal([3], run.Result.Excluded);
        Assert.DoesNotContain(3, run.Result.Survivors);
        Assert.Equal(Agents - 1, run.Result.Survivors.Length);
        Assert.Equal(run.PlaintextRingSum, run.Result.RingSum);
    }

    [Fact]
    public void Run_TooManyDropouts_FailsWithInsufficientShares()
    {
        var options = new SecureAggregationOptions { Degree = 10, Threshold = 8 };
        var scenario = Scenario(options) with
        {
            Dropouts = new Dictionary<SecureAggregationStage, double> { [SecureAggregationStage.Unmasking] = 0.5 },
        };

        var failure = Assert.Throws<InsufficientSharesException>(() => InMemorySecureAggregation.Run(scenario, Input));

        Assert.Equal(8, failure.Threshold);
        Assert.True(failure.Available < 8);
    }

    [Fact]
    public void MaskInput_SingleAgent_TopBytesLookUniform()
    {
        var (masked, quantized) = MaskOneAgent();

        // Chi-square of the top-byte histogram (255 degrees of freedom: mean 255, sd 22.6); 400 is beyond 6 sd.
        Assert.True(TopByteChiSquare(masked) < 400, $"chi-square {TopByteChiSquare(masked):F1}");

        // The test can fail: the unmasked quantised vector sits around L/2 and is far from uniform.
        Assert.True(TopByteChiSquare(quantized) > 10_000);
    }

    [Fact]
    public void AgentIdentity_ExportImport_SignsTheSame()
    {
        using var identity = AgentIdentity.Create();
        using var copy = AgentIdentity.FromPrivateKey(identity.ExportPrivateKey());
        byte[] data = [1, 2, 3];

        var signature = copy.Sign(data);

        Assert.Equal(identity.PublicKey, copy.PublicKey);
        Assert.True(AgentIdentity.Verify(identity.PublicKey, data, signature));
        signature[5] ^= 1;
        Assert.False(AgentIdentity.Verify(identity.PublicKey, data, signature));
    }

    [Fact]
    public void Unmask_RequestNamingAgentBothWays_Refused()
    {
        var graph = NeighbourGraph.Create(4, 3, new byte[32]);
        var options = new SecureAggregationOptions { Threshold = 2 };
        using var identity = AgentIdentity.Create();
        using var agent = new SecureAggregationAgent(0, 1, graph, options, identity, ChaCha20Random.FromSeed("a"));

        Assert.Throws<SecureAggregationException>(() => agent.Unmask(new UnmaskingRequest([0, 1, 2], [2, 3])));
    }

    private static (uint[] Masked, uint[] Quantized) MaskOneAgent()
    {
        const int n = 10;
        var graph = NeighbourGraph.Create(n, 4, new byte[32]);
        var options = new SecureAggregationOptions { Threshold = 3 };
        var identities = Enumerable.Range(0, n).Select(_ => AgentIdentity.Create()).ToArray();
        var keys = identities.Select((id, u) => (u, id.PublicKey)).ToDictionary(p => p.u, p => p.PublicKey);
        var agents = Enumerable.Range(0, n).Select(u => new SecureAggregationAgent(u, 1, graph, options, identities[u], ChaCha20Random.FromSeed($"agent{u}"))).ToArray();
        try
        {
            var coordinator = new SecureAggregationCoordinator(1, graph, options, keys, 4096);
            foreach (var agent in agents)
            {
                Assert.True(coordinator.SubmitKeys(agent.AdvertiseKeys()));
            }

            foreach (var agent in agents)
            {
                coordinator.SubmitShares(agent.AgentId, agent.ShareKeys(coordinator.KeysFor(agent.AgentId), keys));
            }

            var quantized = new uint[4096];
            coordinator.Quantizer.Quantize(Input(0, quantized.Length), quantized, rounding: null);
            var masked = agents[0].MaskInput(quantized, coordinator.SharesFor(0));
            Assert.Empty(masked.RejectedSenders);
            return (masked.Vector, quantized);
        }
        finally
        {
            foreach (var disposable in agents.Cast<IDisposable>().Concat(identities))
            {
                disposable.Dispose();
            }
        }
    }

    private static double TopByteChiSquare(uint[] values)
    {
        var counts = new int[256];
        foreach (var v in values)
        {
            counts[v >> 24]++;
        }

        var expected = values.Length / 256.0;
        return counts.Sum(c => (c - expected) * (c - expected) / expected);
    }

    private static SecureAggregationScenario Scenario(SecureAggregationOptions options) =>
        new() { Agents = Agents, Length = Length, Options = options, Seed = "protocol-test" };

    private static float[] Input(int agent) => Input(agent, Length);

    private static float[] Input(int agent, int length)
    {
        var random = ChaCha20Random.FromSeed($"input-{agent}");
        var values = new float[length];
        random.FillGaussian(values, 0.2);
        return values;
    }

    private static void AssertCloseToFloatSum(SecureAggregationRun run, SecureAggregationOptions options)
    {
        var quantizer = options.Quantizer(Agents);
        var step = 2 * options.ClipRange / quantizer.Levels;
        for (var i = 0; i < Length; i++)
        {
            var expected = run.Result.Survivors.Sum(u => Math.Clamp(Input(u)[i], -options.ClipRange, options.ClipRange));
            Assert.InRange(run.Result.Sum[i], expected - (run.Result.Survivors.Length * step) - 1e-3, expected + (run.Result.Survivors.Length * step) + 1e-3);
        }
    }
}
