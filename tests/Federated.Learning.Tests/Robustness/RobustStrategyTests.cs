using Federated.Learning.Robustness;
using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Robustness;

public sealed class RobustStrategyTests
{
    private static readonly UpdateValidator NoNormCheck = new(new UpdateValidationOptions { MaxNormRatio = null });

    /// <summary>Five clients; "e" is an attacker whose huge delta flips the mean's sign on both coordinates.</summary>
    private static ClientUpdate[] RoundOne() =>
    [
        Update("a", 10, [1, -1]), Update("b", 20, [2, -2]), Update("c", 30, [3, -3]), Update("d", 40, [4, -1]), Update("e", 10, [-1000, 1000]),
    ];

    [Fact]
    public void FedAdamOverTrimmedMean_EqualsFedAdamFedTheTrimmedMeanByHand()
    {
        var robust = new RobustStrategy(new FedAdam(), new TrimmedMean(0.2), NoNormCheck);
        var byHand = new FedAdam();
        float[] global = [0.5f, -0.5f];

        for (var round = 1; round <= 3; round++)
        {
            var updates = RoundOne().Select(u => Update(u.ClientId, u.NumExamples, u.Delta.Select(x => x * round).ToArray())).ToArray();
            var robustResult = Round(robust, global, updates.Reverse(), round);

            // By hand: the trimmed mean (β = 0.2 drops one value per side) in client-id order, as one update of all 110 examples.
            var trimmed = new TrimmedMean(0.2).Aggregate(updates.Select(u => (ReadOnlyMemory<float>)u.Delta).ToList(), updates.Select(u => (double)u.NumExamples).ToList());
            var handResult = Round(byHand, global, [Update("x", 110, trimmed)], round);

            Assert.Equal(handResult.Global, robustResult.Global);
            Assert.Equal(5, robustResult.Accepted);
            Assert.Equal(5, robustResult.Metrics["accepted"]);
            Assert.Equal(110, robustResult.Metrics["examples"]);
            global = robustResult.Global;
        }

        Assert.Equal(byHand.SaveState()["fedadam.m"], robust.SaveState()["fedadam.m"]);
    }

    [Fact]
    public void FedAdamOverTrimmedMean_FirstRound_StepsAlongTheTrimmedMeansSign()
    {
        // Trimmed mean (drop min and max per coordinate): (1 + 2 + 3)/3 = 2 and (−2 − 1 − 1)/3 = −4/3. FedAdam's first
        // step is η m / √v = 0.1 · 0.1Δ / (0.1|Δ|) = 0.1 sign(Δ): x1 = [0.1, −0.1]. Plain FedAdam follows the attacker.
        var robust = Round(new RobustStrategy(new FedAdam(), new TrimmedMean(0.2), NoNormCheck), [0, 0], RoundOne());
        Close([0.1, -0.1], robust.Global);
        Close([-0.1, 0.1], Round(new FedAdam(), [0, 0], RoundOne()).Global);
    }

    [Fact]
    public void Rejections_AreThrownOnAdd_OrReportedAtFinish_AndCounted()
    {
        var strategy = new RobustStrategy(new FedAvg(), new CoordinateMedian());
        var aggregator = strategy.BeginRound(1, new float[] { 0, 0 }, 6, 6);
        aggregator.Add(Update("a", 1, [1, 1]));
        aggregator.Add(Update("b", 1, [2, 1]));
        aggregator.Add(Update("c", 1, [1, 2]));
        aggregator.Add(Update("boosted", 1, [300, 400]));
        var nan = Assert.Throws<UpdateRejectedException>(() => aggregator.Add(Update("nan", 1, [float.NaN, 0])));
        Assert.Equal(RejectionReason.NonFinite, nan.Rejection.Reason);
        Assert.StartsWith("non_finite:", nan.Message, StringComparison.Ordinal);
        Assert.Equal(RejectionReason.DuplicateClient, Assert.Throws<UpdateRejectedException>(() => aggregator.Add(Update("a", 1, [1, 1]))).Rejection.Reason);
        Assert.Equal(4, aggregator.Count);

        var result = aggregator.Finish([new ClientFailure("nan", nan.Message)]);

        // The boosted update (norm 500 > 10 × median 2.1) is left out: median of {1, 2, 1} and {1, 1, 2}.
        Assert.Equal([1f, 1f], result.Global);
        Assert.Equal(3, result.Accepted);
        var rejected = Assert.Single(result.Rejected);
        Assert.Equal("boosted", rejected.ClientId);
        Assert.StartsWith("norm_too_large:", rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(3, result.Metrics["rejected"]);
        Assert.Equal(1, result.Metrics["rejected.non_finite"]);
        Assert.Equal(1, result.Metrics["rejected.duplicate_client"]);
        Assert.Equal(1, result.Metrics["rejected.norm_too_large"]);
        Assert.Equal(1, result.Metrics["failures"]);
        Assert.Equal(3, aggregator.Count);
        Assert.Throws<InvalidOperationException>(() => aggregator.Finish([]));
    }

    [Fact]
    public void TooFewUpdatesForTheRule_FailTheRoundClearly()
    {
        var aggregator = new RobustStrategy(new FedAvg(), MultiKrum.Krum(2)).BeginRound(1, new float[] { 0 }, 5, 5);
        foreach (var id in new[] { "a", "b", "c", "d", "e" })
        {
            aggregator.Add(Update(id, 1, [1]));
        }

        var e = Assert.Throws<InvalidOperationException>(() => aggregator.Finish([]));
        Assert.Contains("2f + 3 = 7", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CenteredClipping_StartsFromThePreviousRound_AcrossSaveAndLoad()
    {
        ClientUpdate[] updates = [Update("a", 1, [0]), Update("b", 1, [1]), Update("c", 1, [100])];
        var rule = new CenteredClipping(tau: 2, iterations: 1);
        var original = new RobustStrategy(new FedAvg(), rule, NoNormCheck);

        // Round 1 from zero: [1] (see ClippingTests). Round 2 centres on it: 1 + (−1 + 0 + 2)/3 = 4/3.
        Close([1], Round(original, [0], updates).Global);
        var state = original.SaveState();
        Close([1], state[RobustStrategy.PreviousKey]);

        var restored = new RobustStrategy(new FedAvg(), rule, NoNormCheck);
        restored.LoadState(state);
        Close([1 + (4.0 / 3)], Round(restored, [1], updates, 2).Global, 1e-6);
        Close([1 + (4.0 / 3)], Round(original, [1], updates, 2).Global, 1e-6);

        var fresh = new RobustStrategy(new FedAvg(), rule, NoNormCheck);
        Close([1 + 1], Round(fresh, [1], updates, 2).Global, 1e-6);
        Assert.Throws<InvalidOperationException>(() => restored.BeginRound(3, new float[2], 3, 3));
    }

    [Fact]
    public void Scaffold_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => new RobustStrategy(new Scaffold(), new CoordinateMedian()));
        Assert.Throws<ArgumentException>(() => new RobustStrategy(new DeterministicStrategy(new Scaffold()), new CoordinateMedian()));
    }

    [Fact]
    public void Factory_AggregatorOption_WrapsTheStrategy()
    {
        var strategy = Assert.IsType<RobustStrategy>(StrategyFactory.Create("fedadam", new Dictionary<string, string>
        {
            ["aggregator"] = "multikrum:f=2,m=5",
            ["eta"] = "0.2",
            ["max_norm_ratio"] = "off",
            ["min_norm_ratio"] = "0.01",
        }));
        Assert.Equal("fedadam+multikrum:f=2,m=5", strategy.Name);
        Assert.Equal(0.2, Assert.IsType<FedAdam>(strategy.Inner).Options.Eta);
        Assert.Null(strategy.Validator.Options.MaxNormRatio);
        Assert.Equal(0.01, strategy.Validator.Options.MinNormRatio);
        Assert.Equal(10, Assert.IsType<RobustStrategy>(StrategyFactory.Create("fedavg", new Dictionary<string, string> { ["aggregator"] = "mean" })).Validator.Options.MaxNormRatio);

        Assert.Throws<ArgumentException>(() => StrategyFactory.Create("fedavg", new Dictionary<string, string> { ["max_norm_ratio"] = "5" }));
        Assert.Throws<ArgumentException>(() => StrategyFactory.Create("fedavg", new Dictionary<string, string> { ["aggregator"] = "mean", ["max_norm_ratio"] = "0.5" }));
        Assert.Throws<ArgumentException>(() => StrategyFactory.Create("fedavg", new Dictionary<string, string> { ["aggregator"] = "krum" }));
        Assert.Throws<ArgumentException>(() => StrategyFactory.Create("scaffold", new Dictionary<string, string> { ["aggregator"] = "median" }));
    }
}
