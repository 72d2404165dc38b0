using Federated.Learning.Asynchronous;
using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Asynchronous;

public sealed class StalenessWeightingTests
{
    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(3, 1.0)]
    [InlineData(100, 1.0)]
    public void Weight_Constant_IsOne(int s, double expected) =>
        Assert.Equal(expected, new StalenessWeighting(StalenessKind.Constant).Weight(s));

    [Theory]
    [InlineData(0, 0.5, 1.0)]
    [InlineData(3, 0.5, 0.5)] // (1+3)^-½ = ½
    [InlineData(8, 1.0 / 3, 1.0 / 2.080083823051904)] // 9^-⅓
    [InlineData(1, 2.0, 0.25)] // 2^-2
    public void Weight_Polynomial_MatchesHandValues(int s, double a, double expected) =>
        Assert.Equal(expected, new StalenessWeighting(StalenessKind.Polynomial, a).Weight(s), 12);

    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(4, 1.0)] // at the knee b = 4
    [InlineData(5, 1.0 / 3)] // 1 / (2·1 + 1)
    [InlineData(8, 1.0 / 9)] // 1 / (2·4 + 1)
    public void Weight_Hinge_MatchesHandValues(int s, double expected) =>
        Assert.Equal(expected, new StalenessWeighting(StalenessKind.Hinge, 2, 4).Weight(s), 12);

    [Theory]
    [InlineData("linear", 0.5, 0)]
    [InlineData("polynomial", -1, 0)]
    [InlineData("hinge", 0, 2)]
    [InlineData("hinge", 1, -2)]
    public void Parse_BadNameOrParameter_IsRefusedWithTheReason(string name, double a, double b)
    {
        var e = Assert.Throws<ArgumentException>(() => StalenessWeighting.Parse(name, a, b));
        Assert.Contains(name == "linear" ? "must be one of constant, polynomial, hinge" : "staleness", e.Message, StringComparison.Ordinal);
    }
}

public sealed class FedBuffBufferTests
{
    private static FedBuffOptions Options(int k = 2, int maxStaleness = 5, double lr = 1, StalenessWeighting? w = null, int perFlush = 1, long perAgent = 0) => new()
    {
        BufferSize = k,
        MaxStaleness = maxStaleness,
        ServerLearningRate = lr,
        Staleness = w ?? new StalenessWeighting(StalenessKind.Polynomial, 0.5),
        MaxContributionsPerFlush = perFlush,
        MaxContributionsPerAgent = perAgent,
    };

    [Fact]
    public void Flush_WeightedByStaleness_EqualsTheHandComputedUpdate()
    {
        // Version 3 now. Agent a trained on version 3 (s = 0, w = 1), agent b on version 0 (s = 3, w = ½).
        var buffer = new FedBuffBuffer(Options(k: 2, lr: 0.5), length: 3, version: 3);
        float[] global = [1, 1, 1];

        Assert.Equal(Admission.Accepted, buffer.Offer("a", 3, [2, 0, -4]));
        Assert.False(buffer.IsFull);
        Assert.Equal(Admission.Accepted, buffer.Offer("b", 0, [4, 8, 0]));
        Assert.True(buffer.IsFull);
        var result = buffer.Flush(global);

        // global + η/K · (1·Δa + ½·Δb) = 1 + 0.25 · ([2, 0, −4] + [2, 4, 0]) = [2, 2, 0]
        Assert.Equal([2f, 2f, 0f], global);
        Assert.Equal(4, result.Version);
        Assert.Equal(4, buffer.Version);
        Assert.Equal(2, result.Updates);
        Assert.Equal(1.5, result.MeanStaleness);
        Assert.Equal(3, result.MaxStaleness);
        Assert.Equal(0.75, result.MeanWeight, 12);
        Assert.Equal(0, buffer.Count);
    }

    [Fact]
    public void Flush_EmptiesTheBuffer_TheNextFlushSeesOnlyNewUpdates()
    {
        var buffer = new FedBuffBuffer(Options(k: 1, w: new StalenessWeighting(StalenessKind.Constant)), length: 2);
        float[] global = [0, 0];
        buffer.Offer("a", 0, [1, 1]);
        buffer.Flush(global);
        buffer.Offer("a", 1, [0, 2]);
        buffer.Flush(global);

        Assert.Equal([1f, 3f], global);
        Assert.Equal(2, buffer.Version);
    }

    [Fact]
    public void Offer_BeyondMaxStaleness_IsRejectedAndCounted()
    {
        var buffer = new FedBuffBuffer(Options(k: 1, maxStaleness: 2), length: 1, version: 5);

        Assert.Equal(Admission.Stale, buffer.Offer("a", 2, [1])); // s = 3 > 2
        Assert.Equal(Admission.Stale, buffer.Offer("b", 0, [1])); // s = 5
        Assert.Equal(2, buffer.RejectedStale);
        Assert.Equal(0, buffer.Count);
        Assert.Equal(Admission.Accepted, buffer.Offer("c", 3, [1])); // s = 2: at the maximum, kept
        Assert.Equal(2, buffer.RejectedStale);
    }

    [Fact]
    public void Offer_FromTheFuture_Throws()
    {
        var buffer = new FedBuffBuffer(Options(), length: 1, version: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Offer("a", 2, [1]));
    }

    [Fact]
    public void Offer_NonFinite_Throws()
    {
        var buffer = new FedBuffBuffer(Options(), length: 2);
        Assert.Throws<ArgumentException>(() => buffer.Offer("a", 0, [float.NaN, 1]));
        Assert.Equal(0, buffer.Count);
    }

    [Fact]
    public void Offer_SecondUpdateOfAnAgentInOneBuffer_IsRefusedByTheCap()
    {
        var buffer = new FedBuffBuffer(Options(k: 3), length: 1);

        Assert.True(buffer.CanContributeNow("a"));
        Assert.Equal(Admission.Accepted, buffer.Offer("a", 0, [1]));
        Assert.False(buffer.CanContributeNow("a"));
        Assert.True(buffer.CanContributeNow("b"));
        Assert.Equal(Admission.OverFlushCap, buffer.Offer("a", 0, [1]));
        Assert.Equal(1, buffer.RejectedOverCap);
        Assert.Equal(1, buffer.Count);
    }

    [Fact]
    public void CanContributeNow_AfterTheFlush_IsTrueAgain()
    {
        var buffer = new FedBuffBuffer(Options(k: 1), length: 1);
        buffer.Offer("a", 0, [1]);
        buffer.Flush(new float[1]);

        Assert.True(buffer.CanContributeNow("a"));
    }

    [Fact]
    public void Offer_AgentOverItsRunCap_IsRefusedAcrossFlushes()
    {
        var buffer = new FedBuffBuffer(Options(k: 1, perAgent: 2), length: 1);
        float[] global = [0];
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(Admission.Accepted, buffer.Offer("a", buffer.Version, [1]));
            buffer.Flush(global);
        }

        Assert.False(buffer.CanContribute("a"));
        Assert.True(buffer.CanContribute("b"));
        Assert.Equal(Admission.OverAgentCap, buffer.Offer("a", buffer.Version, [1]));
    }

    [Fact]
    public void Flush_BeforeTheBufferIsFull_Throws()
    {
        var buffer = new FedBuffBuffer(Options(k: 2), length: 1);
        buffer.Offer("a", 0, [1]);
        Assert.Throws<InvalidOperationException>(() => buffer.Flush(new float[1]));
    }

    [Fact]
    public void Constructor_InvalidOptions_NamesEveryProblem()
    {
        var e = Assert.Throws<ArgumentException>(() => new FedBuffBuffer(new FedBuffOptions { BufferSize = 0, ServerLearningRate = -1, ClipBound = 1 }, 4));
        Assert.Contains("buffer size K", e.Message, StringComparison.Ordinal);
        Assert.Contains("server learning rate", e.Message, StringComparison.Ordinal);
        Assert.Contains("noise multiplier", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Flush_WithDp_ChargesOneStepWithQOnePerFlush()
    {
        var ledger = new PrivacyLedger();
        var options = new FedBuffOptions { BufferSize = 2, MaxStaleness = 10, ClipBound = 1, NoiseMultiplier = 1.1 };
        var buffer = new FedBuffBuffer(options, 4, ledger: ledger, noise: ChaCha20Random.FromSeed("test"));
        var global = new float[4];
        for (var flush = 0; flush < 3; flush++)
        {
            buffer.Offer("a", buffer.Version, [3, 0, 0, 4]); // norm 5, clipped to 1
            buffer.Offer("b", buffer.Version, [0.1f, 0, 0, 0]);
            var result = buffer.Flush(global);
            Assert.Equal(1, result.Clipped);
            Assert.Equal(1.1, result.NoiseStddev, 12);
        }

        var entry = Assert.Single(ledger.Entries);
        Assert.Equal(1.0, entry.SampleRate);
        Assert.Equal(1.1, entry.NoiseMultiplier);
        Assert.Equal(3, entry.Steps);

        // Exactly the full-batch Gaussian mechanism composed three times, and more than a sampled one would charge.
        var spent = ledger.Spent(1e-5).Epsilon;
        Assert.Equal(RdpAccountant.Epsilon(1.0, 1.1, 3, 1e-5).Epsilon, spent, 12);
        Assert.True(spent > RdpAccountant.Epsilon(0.1, 1.1, 3, 1e-5).Epsilon);
    }

    [Fact]
    public void Flush_WithDp_ClipsBeforeWeighting()
    {
        // Noise multiplier tiny: the flush is the clipped mean up to ~1e-9.
        var options = new FedBuffOptions { BufferSize = 1, MaxStaleness = 10, ClipBound = 2, NoiseMultiplier = 1e-9, Staleness = new StalenessWeighting(StalenessKind.Constant) };
        var buffer = new FedBuffBuffer(options, 2, ledger: new PrivacyLedger(), noise: ChaCha20Random.FromSeed("x"));
        var global = new float[2];
        buffer.Offer("a", 0, [6, 8]); // norm 10 → [1.2, 1.6]
        buffer.Flush(global);

        Assert.Equal(1.2, global[0], 4);
        Assert.Equal(1.6, global[1], 4);
    }

    [Fact]
    public void Constructor_PrivateWithoutLedger_Throws() =>
        Assert.Throws<ArgumentException>(() => new FedBuffBuffer(new FedBuffOptions { ClipBound = 1, NoiseMultiplier = 1 }, 2));
}
