using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Strategies;

public sealed class FedAvgMTests
{
    [Fact]
    public void TwoRounds_MomentumAccumulates()
    {
        var strategy = new FedAvgM(serverLearningRate: 0.5, momentum: 0.9);

        // Round 1: Δ = (1·[2, −4] + 1·[0, 0]) / 2 = [1, −2]; v = 0.9·0 + Δ = [1, −2]; x1 = 0 + 0.5·v = [0.5, −1].
        var first = Round(strategy, [0, 0], [Update("a", 1, [2, -4]), Update("b", 1, [0, 0])]);
        Close([0.5, -1], first.Global);

        // Round 2: Δ = [1, 0]; v = 0.9·[1, −2] + [1, 0] = [1.9, −1.8]; x2 = [0.5, −1] + 0.5·v = [1.45, −1.9].
        var second = Round(strategy, first.Global, [Update("a", 5, [1, 0])], round: 2);
        Close([1.45, -1.9], second.Global);
        Close([1.9, -1.8], strategy.SaveState()[FedAvgM.MomentumKey]);
    }

    [Fact]
    public void ZeroMomentum_EqualsFedAvgWithTheSameServerRate()
    {
        var momentumFree = new FedAvgM(0.5, 0);
        var plain = new FedAvg(0.5);
        float[] x = [1, 2];
        for (var r = 1; r <= 2; r++)
        {
            ClientUpdate[] updates = [Update("a", 1, [1, -1]), Update("b", 2, [4, 2])];
            Assert.Equal(Round(plain, x, updates, r).Global, Round(momentumFree, x, updates, r).Global);
        }
    }

    [Fact]
    public void SaveLoad_RoundTrip_ContinuesIdentically()
    {
        var original = new FedAvgM(1, 0.9);
        var x1 = Round(original, [0, 0, 0], [Update("a", 1, [0.3f, -0.7f, 1.1f])]).Global;
        var restored = new FedAvgM(1, 0.9);
        restored.LoadState(original.SaveState());

        ClientUpdate[] next = [Update("a", 1, [0.2f, 0.1f, -0.4f]), Update("b", 3, [-1, 0.5f, 0.25f])];
        Assert.Equal(Round(original, x1, next, 2).Global, Round(restored, x1, next, 2).Global);
    }

    [Fact]
    public void LoadState_WrongLengthsOrKeys_AreRejected()
    {
        var strategy = new FedAvgM();
        Assert.Throws<ArgumentException>(() => strategy.LoadState(new Dictionary<string, float[]> { ["bogus"] = [1] }));
        Assert.Throws<ArgumentException>(() => strategy.LoadState(new Dictionary<string, float[]> { [FedAvgM.MomentumKey] = [float.NaN] }));

        strategy.LoadState(new Dictionary<string, float[]> { [FedAvgM.MomentumKey] = [1, 2, 3] });
        var error = Assert.Throws<InvalidOperationException>(() => strategy.BeginRound(1, new float[2], 1, 1));
        Assert.Contains("3", error.Message, StringComparison.Ordinal);
    }
}
