using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Strategies;

/// <summary>
/// Hand computations with the defaults η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-9 (v₋₁ = τ² = 1e-18, invisible here).
/// Round 1: two clients, n = 1 each, Δ = ([2, −2] + [0, −2]) / 2 = [1, −2] from x0 = [0, 0].
/// Round 2: one client, Δ = [1, 2].
/// For every rule m1 = 0.1·[1, −2] = [0.1, −0.2] and m2 = 0.9·m1 + 0.1·[1, 2] = [0.19, 0.02].
/// </summary>
public sealed class AdaptiveStrategyTests
{
    private static readonly ClientUpdate[] RoundOne = [Update("a", 1, [2, -2]), Update("b", 1, [0, -2])];
    private static readonly ClientUpdate[] RoundTwo = [Update("a", 4, [1, 2])];

    [Fact]
    public void FedAdagrad_TwoRounds_MatchHandComputation()
    {
        var strategy = new FedAdagrad();

        // v1 = τ² + Δ² = [1, 4]; x1 = 0.1·[0.1/1, −0.2/2] = [0.01, −0.01].
        var x1 = Round(strategy, [0, 0], RoundOne).Global;
        Close([0.01, -0.01], x1, 1e-8);

        // v2 = [1, 4] + [1, 4] = [2, 8]; x2 = x1 + 0.1·[0.19/√2, 0.02/√8] = [0.01 + 0.0134350, −0.01 + 0.000707107].
        var x2 = Round(strategy, x1, RoundTwo, 2).Global;
        Close([0.0234350288, -0.0092928932], x2, 1e-7);
        Close([2, 8], strategy.SaveState()["fedadagrad.v"], 1e-6);
    }

    [Fact]
    public void FedAdam_TwoRounds_MatchHandComputation()
    {
        var strategy = new FedAdam();

        // v1 = 0.99·τ² + 0.01·[1, 4] = [0.01, 0.04], √v1 = [0.1, 0.2]; x1 = 0.1·[0.1/0.1, −0.2/0.2] = [0.1, −0.1].
        var x1 = Round(strategy, [0, 0], RoundOne).Global;
        Close([0.1, -0.1], x1);

        // v2 = 0.99·[0.01, 0.04] + 0.01·[1, 4] = [0.0199, 0.0796], √v2 = [0.1410674, 0.2821347];
        // x2 = x1 + 0.1·[0.19/0.1410674, 0.02/0.2821347] = [0.1 + 0.1346874, −0.1 + 0.0070888].
        var x2 = Round(strategy, x1, RoundTwo, 2).Global;
        Close([0.2346874280, -0.0929111880], x2);
        var state = strategy.SaveState();
        Close([0.19, 0.02], state["fedadam.m"]);
        Close([0.0199, 0.0796], state["fedadam.v"], 1e-8);
    }

    [Fact]
    public void FedYogi_TwoRounds_MatchHandComputation()
    {
        var strategy = new FedYogi();

        // v1 = τ² − 0.01·[1, 4]·sign(τ² − [1, 4]) = τ² + [0.01, 0.04]: as Adam, x1 = [0.1, −0.1].
        var x1 = Round(strategy, [0, 0], RoundOne).Global;
        Close([0.1, -0.1], x1);

        // v2 = [0.01, 0.04] − 0.01·[1, 4]·sign([0.01 − 1, 0.04 − 4]) = [0.02, 0.08] (Adam: [0.0199, 0.0796]);
        // x2 = x1 + 0.1·[0.19/√0.02, 0.02/√0.08] = [0.1 + 0.1343503, −0.1 + 0.0070711].
        var x2 = Round(strategy, x1, RoundTwo, 2).Global;
        Close([0.2343502884, -0.0929289322], x2);
        Close([0.02, 0.08], strategy.SaveState()["fedyogi.v"], 1e-8);

        // Round 3, Δ = [0.1, 0] (n = 1): Δ² = [0.01, 0] < v, so sign = +1 and v shrinks by 0.01·Δ²:
        // v3 = [0.02 − 0.0001, 0.08 − 0] = [0.0199, 0.08].
        Round(strategy, x2, [Update("a", 1, [0.1f, 0])], 3);
        Close([0.0199, 0.08], strategy.SaveState()["fedyogi.v"], 1e-8);
    }

    [Fact]
    public void Options_AreHonoured()
    {
        // η = 1, β1 = 0 (m = Δ), τ = 1: Adagrad x1 = Δ / (√(Δ² + τ²) + τ) with v₋₁ = τ² = 1:
        // Δ = [1, −2]: [1/(√2 + 1), −2/(√5 + 1)] = [0.4142136, −0.6180340].
        var strategy = new FedAdagrad(new AdaptiveOptions { Eta = 1, Beta1 = 0, Tau = 1 });
        Close([0.41421356, -0.61803399], Round(strategy, [0, 0], RoundOne).Global);

        // Same with v₋₁ = 0 (Flower's start): [1/(1 + 1), −2/(2 + 1)] = [0.5, −0.6666667].
        var flowerStart = new FedAdagrad(new AdaptiveOptions { Eta = 1, Beta1 = 0, Tau = 1, InitialVariance = 0 });
        Close([0.5, -0.66666667], Round(flowerStart, [0, 0], RoundOne).Global);
    }

    [Theory]
    [InlineData("fedadagrad")]
    [InlineData("fedadam")]
    [InlineData("fedyogi")]
    public void SaveLoad_RoundTrip_ContinuesIdentically(string name)
    {
        var options = new Dictionary<string, string>();
        var original = StrategyFactory.Create(name, options);
        var uninterrupted = StrategyFactory.Create(name, options);
        var x1 = Round(original, [0.5f, -0.25f, 1], [Update("a", 2, [0.3f, -0.7f, 0.01f]), Update("b", 1, [-0.1f, 0.2f, 0.5f])]).Global;
        Round(uninterrupted, [0.5f, -0.25f, 1], [Update("a", 2, [0.3f, -0.7f, 0.01f]), Update("b", 1, [-0.1f, 0.2f, 0.5f])]);

        var restored = StrategyFactory.Create(name, options);
        restored.LoadState(original.SaveState());

        ClientUpdate[] next = [Update("c", 1, [0.05f, 0.4f, -0.3f])];
        var expected = Round(uninterrupted, x1, next, 2).Global;
        Assert.Equal(expected, Round(restored, x1, next, 2).Global);
        Assert.Equal(expected, Round(original, x1, next, 2).Global);
        Assert.Equal(uninterrupted.SaveState()[$"{name}.v"], restored.SaveState()[$"{name}.v"]);
    }

    [Fact]
    public void LoadState_InconsistentTensors_AreRejected()
    {
        var strategy = new FedAdam();
        Assert.Throws<ArgumentException>(() => strategy.LoadState(new Dictionary<string, float[]> { ["fedadam.m"] = [1, 2] }));
        Assert.Throws<ArgumentException>(() => strategy.LoadState(new Dictionary<string, float[]> { ["fedadam.m"] = [1, 2], ["fedadam.v"] = [1] }));
        Assert.Throws<ArgumentException>(() => strategy.LoadState(new Dictionary<string, float[]> { ["fedadam.m"] = [1], ["fedadam.v"] = [-1] }));

        strategy.LoadState(new Dictionary<string, float[]> { ["fedadam.m"] = [1, 2], ["fedadam.v"] = [1, 1] });
        Assert.Throws<InvalidOperationException>(() => strategy.BeginRound(1, new float[3], 1, 1));
    }
}
