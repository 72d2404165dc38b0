using Federated.Learning.Privacy;
using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Privacy;

public sealed class DifferentialPrivacyStrategyTests
{
    private static DifferentialPrivacyOptions Options(double z = 1, double clip = 1, double q = 0.5) =>
        new() { NoiseMultiplier = z, ClipBound = clip, SampleRate = q };

    private static DifferentialPrivacyStrategy Dp(IStrategy inner, DifferentialPrivacyOptions options, string seed = "dp-test", PrivacyLedger? ledger = null) =>
        new(inner, options, ChaCha20Random.FromSeed(seed), ledger);

    [Fact]
    public void Round_ClipsSumsAndDividesByTheExpectedParticipants()
    {
        // z tiny so the noise is invisible. [3, 4] (norm 5) clips to [0.6, 0.8]; [0.3, 0.4] fits. Equal weights,
        // whatever the examples; m = q × enrolled = 0.5 × 8 = 4 (not the 2 that came): ([0.6, 0.8] + [0.3, 0.4]) / 4.
        var strategy = Dp(new FedAvg(), Options(z: 1e-9));

        var result = Round(strategy, [1, 1], [Update("a", 1000, [3, 4]), Update("b", 1, [0.3f, 0.4f])], available: 8);

        Close([1.225, 1.3], result.Global, 1e-5);
        Assert.Equal(2, result.Accepted);
        Assert.Equal(0.5, result.Metrics["dp_clipped_fraction"]);
        Assert.Equal(1, result.Metrics["dp_clip_bound"]);
        Assert.Equal(0.5, result.Metrics["dp_sample_rate"]);
        Assert.Equal(1e-9, result.Metrics["dp_noise_multiplier"]);
        Assert.Equal(4, result.Metrics["dp_expected_participants"]);
        Assert.True(result.Metrics.ContainsKey("delta_norm"));
        Assert.Equal("dp-fedavg", strategy.Name);
    }

    [Fact]
    public void Round_NoiseOnTheMean_HasStandardDeviationZTimesCOverM()
    {
        // Zero updates: the model moves by the noise alone, N(0, (z C / m)²) per coordinate = (1.5 × 2 / 10)² here.
        var strategy = Dp(new FedAvg(), Options(z: 1.5, clip: 2, q: 0.1));
        var global = new float[200_000];
        var updates = Enumerable.Range(0, 7).Select(i => Update($"c{i}", 1, new float[global.Length]));

        var result = Round(strategy, global, updates, available: 100);

        var expected = 1.5 * 2 / 10;
        var mean = result.Global.Average(v => (double)v);
        var std = Math.Sqrt(result.Global.Sum(v => (v - mean) * (v - mean)) / (global.Length - 1));
        Assert.True(Math.Abs((std / expected) - 1) < 0.01, $"noise standard deviation {std}, expected {expected}");
        Assert.True(Math.Abs(mean) < 0.01 * expected, $"noise mean {mean}");
        Assert.Equal(expected, result.Metrics["dp_noise_stddev"], 12);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Round_WithoutAnyUpdate_ReleasesTheNoiseAlone_AndIsCharged(bool deterministic)
    {
        // An empty Poisson sample, or every sampled agent failing: the mechanism still releases N(0, (z C / m)²) per
        // coordinate, charged like any round (a release that depended on whether updates came would not be covered).
        // Plain FedAvg cannot finish such a round.
        IStrategy strategy = Dp(new FedAvg(), Options(z: 1.5, clip: 2, q: 0.1));
        var dp = (DifferentialPrivacyStrategy)strategy;
        if (deterministic)
        {
            strategy = new DeterministicStrategy(strategy);
        }

        var global = new float[200_000];

        var result = Round(strategy, global, [], available: 100);

        Assert.Equal(0, result.Accepted);
        var expected = 1.5 * 2 / 10;
        var std = Math.Sqrt(result.Global.Sum(v => (double)v * v) / global.Length);
        Assert.True(Math.Abs((std / expected) - 1) < 0.01, $"noise standard deviation {std}, expected {expected}");
        Assert.Equal([new PrivacyLedgerEntry(0.1, 1.5, 1)], dp.Ledger.Entries);
        Assert.Equal(RdpAccountant.Epsilon(0.1, 1.5, 1, 1e-5).Epsilon, result.Metrics["dp_epsilon"], 12);
        Assert.False(result.Metrics.ContainsKey("dp_clipped_fraction"));
        Assert.Throws<InvalidOperationException>(() => Round(new FedAvg(), global, []));
    }

    [Fact]
    public void AdaptiveClipping_RoundWithoutAnyUpdate_MovesTheBoundByTheCountNoiseOnly()
    {
        // No update: the noised unclipped fraction is 1/2 + N(0, σ_b²)/m, so with σ_b / m tiny (0.5 / 10,000) the bound
        // stays put.
        var options = Options(z: 0.5) with { Adaptive = new AdaptiveClipping { CountNoiseStddev = 0.5, LearningRate = 0.5 } };
        var strategy = Dp(new FedAvg(), options);

        var result = Round(strategy, [0, 0], [], available: 20_000);

        Assert.Equal(0.5, result.Metrics["dp_unclipped_fraction_noised"], 3);
        Assert.Equal(1, strategy.ClipBound, 3);
        Assert.Equal(1, strategy.Ledger.Steps);
    }

    [Fact]
    public void Rounds_ChargeTheLedger_AndReportEpsilon()
    {
        var strategy = Dp(new FedAvg(), Options(z: 1.1, q: 0.1));
        AggregationResult? last = null;
        for (var round = 1; round <= 3; round++)
        {
            last = Round(strategy, [0, 0], [Update("a", 1, [1, 0])], round, available: 10);
        }

        Assert.Equal([new PrivacyLedgerEntry(0.1, 1.1, 3)], strategy.Ledger.Entries);
        var expected = RdpAccountant.Epsilon(0.1, 1.1, 3, 1e-5);
        Assert.Equal(expected.Epsilon, last!.Metrics["dp_epsilon"], 12);
        Assert.Equal(expected, strategy.Spent);
    }

    [Fact]
    public void BeginRound_WhenTheBudgetWouldBeExceeded_Refuses()
    {
        var options = Options(z: 0.8, q: 0.5) with { EpsilonBudget = 12 };
        var strategy = Dp(new FedAvg(), options);
        var rounds = 0;
        while (!strategy.NextRoundExceedsBudget)
        {
            Round(strategy, [0], [Update("a", 1, [1])], ++rounds, available: 2);
            Assert.True(rounds < 1000, "the budget never ran out");
        }

        var error = Assert.Throws<InvalidOperationException>(() => strategy.BeginRound(rounds + 1, new float[] { 0 }, 1, 2));
        Assert.Contains("budget", error.Message, StringComparison.Ordinal);
        Assert.True(strategy.Spent.Epsilon <= 12);
        Assert.True(rounds > 1);
    }

    [Fact]
    public void Decorator_ComposesWithFedAdam_OnTheNoisedMean()
    {
        // DP(FedAvg) returns x + noised mean; feeding that mean to a plain FedAdam must give DP(FedAdam)'s model.
        var updates = new[] { Update("a", 1, [0.5f, -0.2f, 0.1f]), Update("b", 3, [2, 2, 2]) };
        float[] global = [0.1f, 0.2f, 0.3f];
        var viaFedAvg = Round(Dp(new FedAvg(), Options(z: 0.7)), global, updates, available: 4).Global;
        var noisedMean = viaFedAvg.Zip(global, (a, b) => a - b).ToArray();

        var dpAdam = Dp(new FedAdam(), Options(z: 0.7));
        var viaDp = Round(dpAdam, global, updates, available: 4).Global;
        var plain = Round(new FedAdam(), global, [Update("mean", 1, noisedMean)]).Global;

        Close([.. plain.Select(v => (double)v)], viaDp, 1e-6);
        Assert.Contains("fedadam.m", dpAdam.SaveState().Keys);
    }

    [Fact]
    public void SameSeed_SameModel_OtherSeed_OtherModel_RetriedRound_OtherNoise()
    {
        var updates = new[] { Update("a", 1, [1, 2, 3]) };
        var first = Round(Dp(new FedAvg(), Options(), "seed-1"), [0, 0, 0], updates, available: 2).Global;
        var again = Round(Dp(new FedAvg(), Options(), "seed-1"), [0, 0, 0], updates, available: 2).Global;
        var other = Round(Dp(new FedAvg(), Options(), "seed-2"), [0, 0, 0], updates, available: 2).Global;

        var retrying = Dp(new FedAvg(), Options(), "seed-1");
        var firstAttempt = Round(retrying, [0, 0, 0], updates, available: 2).Global;
        var secondAttempt = Round(retrying, [0, 0, 0], updates, available: 2).Global;

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Equal(first, firstAttempt);
        Assert.NotEqual(firstAttempt, secondAttempt);
    }

    [Fact]
    public void Restart_FromSavedState_ReproducesTheUninterruptedRun()
    {
        var options = Options() with { Adaptive = new AdaptiveClipping { CountNoiseStddev = 2 } };
        ClientUpdate[] updates = [Update("a", 1, [3, 4]), Update("b", 1, [0.1f, 0.1f])];
        var uninterrupted = Dp(new FedAdam(), options);
        var model1 = Round(uninterrupted, [0, 0], updates, round: 1, available: 4).Global;
        var saved = uninterrupted.SaveState();
        var ledger = uninterrupted.Ledger.ToJson();
        var model2 = Round(uninterrupted, model1, updates, round: 2, available: 4).Global;

        var restarted = Dp(new FedAdam(), options, ledger: PrivacyLedger.FromJson(ledger));
        restarted.LoadState(saved);
        var resumed = Round(restarted, model1, updates, round: 2, available: 4).Global;

        Assert.Equal(model2, resumed);
        Assert.Equal(uninterrupted.ClipBound, restarted.ClipBound);
        Assert.Equal(uninterrupted.Ledger.Entries, restarted.Ledger.Entries);
    }

    [Fact]
    public void AdaptiveClipping_MovesTheBound_AndSavesIt()
    {
        // Every update is far above C = 1, so the unclipped fraction is ~0 < γ = 0.5 and the bound grows.
        var options = Options(z: 0.5) with { Adaptive = new AdaptiveClipping { CountNoiseStddev = 0.5, LearningRate = 0.5 } };
        var strategy = Dp(new FedAvg(), options);
        var updates = Enumerable.Range(0, 10).Select(i => Update($"c{i}", 1, [100, 0]));

        var result = Round(strategy, [0, 0], updates, available: 20);

        Assert.True(strategy.ClipBound > 1, $"bound {strategy.ClipBound}");
        Assert.Equal(strategy.ClipBound, result.Metrics["dp_next_clip_bound"]);
        Assert.Equal(1, result.Metrics["dp_clipped_fraction"]);
        Assert.Equal((float)strategy.ClipBound, strategy.SaveState()[DifferentialPrivacyStrategy.ClipBoundStateKey][0]);
        Assert.Equal(AdaptiveClipping.UpdateNoiseMultiplier(0.5, 0.5), result.Metrics["dp_update_noise_multiplier"], 14);
    }

    [Fact]
    public void Options_AdaptiveWithTooLittleCountNoise_AreRejected()
    {
        var options = Options(z: 3) with { Adaptive = new AdaptiveClipping { CountNoiseStddev = 1 } };

        Assert.Throws<ArgumentOutOfRangeException>(() => Dp(new FedAvg(), options));
    }

    [Fact]
    public void ClipOnAgents_SendsTheBound_AcceptsClippedUpdates_RejectsUnclippedOnes()
    {
        var options = Options(z: 1e-9, clip: 2) with { ClipOnAgents = true };
        var strategy = Dp(new FedAvg(), options);
        var configuration = strategy.ConfigureFit(1);
        var delta = new float[] { 30, 40 };
        var clip = AgentClipping.Apply(delta, configuration)!.Value;
        var metrics = new Dictionary<string, double>();
        AgentClipping.Report(clip, metrics);

        var aggregator = strategy.BeginRound(1, new float[] { 0, 0 }, 2, 2);
        aggregator.Add(Update("clipped", 1, delta, metrics));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("raw", 1, [30, 40])));
        var result = aggregator.Finish([]);

        Assert.Equal("2", configuration[AgentClipping.BoundKey]);
        Assert.Equal(1, result.Accepted);
        Close([1.2, 1.6], result.Global, 1e-4);
        Assert.Equal(1, result.Metrics["dp_clipped_fraction"]);
    }

    [Fact]
    public void ServerClipping_DoesNotAskAgentsToClip()
    {
        var configuration = Dp(new FedProx(0.1), Options()).ConfigureFit(1);

        Assert.False(configuration.ContainsKey(AgentClipping.BoundKey));
        Assert.Equal("0.1", configuration[FedProx.MuKey]);
    }

    [Fact]
    public void Scaffold_CannotBeWrapped()
    {
        var strategy = Dp(new Scaffold(), Options());

        Assert.Throws<NotSupportedException>(() => strategy.BeginRound(1, new float[] { 0, 0 }, 1, 2));
    }

    [Fact]
    public void UnderDeterministicStrategy_ArrivalOrderDoesNotMatter()
    {
        ClientUpdate[] updates = [Update("a", 1, [1e3f, 1]), Update("b", 1, [1, 2]), Update("c", 1, [-5, 0.5f])];
        var first = Round(new DeterministicStrategy(Dp(new FedAvg(), Options())), [0, 0], updates, available: 6).Global;
        var second = Round(new DeterministicStrategy(Dp(new FedAvg(), Options())), [0, 0], updates.Reverse(), available: 6).Global;

        Assert.Equal(first, second);
    }

    [Fact]
    public void Add_StillValidatesUpdates()
    {
        var aggregator = Dp(new FedAvg(), Options()).BeginRound(1, new float[] { 0, 0 }, 1, 2);

        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [1])));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [float.NaN, 1])));
        aggregator.Add(Update("a", 1, [1, 1]));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [1, 1])));
    }

    [Fact]
    public void LoadState_RejectsAnAdaptiveBoundInAFixedRun()
    {
        var strategy = Dp(new FedAvg(), Options());

        Assert.Throws<ArgumentException>(() => strategy.LoadState(new Dictionary<string, float[]> { [DifferentialPrivacyStrategy.ClipBoundStateKey] = [1] }));
    }
}
