using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Strategies;

public sealed class FedAvgTests
{
    [Fact]
    public void Finish_WeightsOneToThree_IsExampleWeightedMeanOfDeltas()
    {
        // x = [1, 2, 3]; A: n = 1, Δ = [4, 0, −4]; B: n = 3, Δ = [0, 4, 8].
        // Δ = (1·[4, 0, −4] + 3·[0, 4, 8]) / 4 = [4, 12, 20] / 4 = [1, 3, 5]; x' = [2, 5, 8].
        var result = Round(new FedAvg(), [1, 2, 3],
        [
            Update("a", 1, [4, 0, -4], new Dictionary<string, double> { ["loss"] = 1.0, ["seconds"] = 9 }),
            Update("b", 3, [0, 4, 8], new Dictionary<string, double> { ["loss"] = 2.0, ["accuracy"] = 0.5 }),
        ]);

        Assert.Equal([2f, 5f, 8f], result.Global);
        Assert.Equal(2, result.Accepted);
        Assert.Equal(2, result.Metrics["accepted"]);
        Assert.Equal(4, result.Metrics["examples"]);
        Assert.Equal(1.75, result.Metrics["loss"], 12);      // (1·1 + 3·2) / 4
        Assert.Equal(0.5, result.Metrics["accuracy"], 12);   // only B reports it
        Assert.Equal(Math.Sqrt(35), result.Metrics["delta_norm"], 6); // ‖[1, 3, 5]‖
        Assert.False(result.Metrics.ContainsKey("seconds"));
    }

    [Fact]
    public void Finish_ServerLearningRate_ScalesTheStep()
    {
        // Same Δ = [1, 3, 5] with η_s = 0.5: x' = [1.5, 3.5, 5.5].
        var result = Round(new FedAvg(0.5), [1, 2, 3], [Update("a", 1, [4, 0, -4]), Update("b", 3, [0, 4, 8])]);

        Assert.Equal([1.5f, 3.5f, 5.5f], result.Global);
    }

    [Fact]
    public void BeginRound_DoesNotModifyTheGlobalModel()
    {
        float[] global = [1, 2];
        var result = Round(new FedAvg(), global, [Update("a", 2, [1, 1])]);

        Assert.Equal([1f, 2f], global);
        Assert.Equal([2f, 3f], result.Global);
        Assert.True(new FedAvg().BeginRound(1, global, 1, 1).IsIncremental);
    }

    [Fact]
    public void FedProx_ConfigureFit_SendsMuInInvariantCulture_AndAggregatesLikeFedAvg()
    {
        var strategy = new FedProx(0.25);

        Assert.Equal("0.25", strategy.ConfigureFit(3)["proximal_mu"]);
        Assert.Equal("fedprox", strategy.Name);
        var result = Round(strategy, [1, 2, 3], [Update("a", 1, [4, 0, -4]), Update("b", 3, [0, 4, 8])]);
        Assert.Equal([2f, 5f, 8f], result.Global);
    }

    [Fact]
    public void Constructors_InvalidRates_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FedAvg(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FedAvg(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FedProx(-0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FedAvgM(momentum: 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FedAdam(new AdaptiveOptions { Tau = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FedNova(clientMomentum: -0.5));
    }
}
