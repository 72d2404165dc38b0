using Federated.Learning.Strategies;

namespace Federated.Learning.Tests.Strategies;

public sealed class FedNovaTests
{
    private static ClientUpdate Update(string id, long examples, long steps, float[] delta) =>
        new() { ClientId = id, NumExamples = examples, LocalSteps = steps, Delta = delta };

    [Theory]
    [InlineData(1, 0.0, 1.0)]
    [InlineData(2, 0.0, 2.0)]
    [InlineData(4, 0.0, 4.0)]
    [InlineData(1, 0.9, 1.0)]    // [1 − 0.9·0.1/0.1] / 0.1 = 1
    [InlineData(2, 0.9, 2.9)]    // [2 − 0.9·(1 − 0.81)/0.1] / 0.1 = (2 − 1.71)/0.1 = 2.9   (= 1 + 1.9)
    [InlineData(4, 0.9, 9.049)]  // [4 − 0.9·(1 − 0.6561)/0.1] / 0.1 = (4 − 3.0951)/0.1 = 9.049 (= 1 + 1.9 + 2.71 + 3.439)
    public void NormalizingFactor_MatchesHandComputation(long steps, double momentum, double expected) =>
        Assert.Equal(expected, FedNova.NormalizingFactor(steps, momentum), 9);

    [Fact]
    public void Finish_PlainSgd_NormalisesByLocalSteps()
    {
        // ρ = 0, p = [0.5, 0.5]; A: τ = 2, Δ = [2, 4] → a = 2, d = [1, 2]; B: τ = 4, Δ = [4, −4] → a = 4, d = [1, −1].
        // Σ p d = [1, 0.5]; τ_eff = 0.5·2 + 0.5·4 = 3; Δ = 3·[1, 0.5] = [3, 1.5] (FedAvg would give [3, 0]).
        var strategy = new FedNova();
        var aggregator = strategy.BeginRound(1, new float[] { 0, 0 }, 2, 2);
        aggregator.Add(Update("a", 10, 2, [2, 4]));
        aggregator.Add(Update("b", 10, 4, [4, -4]));
        var result = aggregator.Finish([]);

        StrategyTestKit.Close([3, 1.5], result.Global);
        Assert.Equal(3, result.Metrics["tau_eff"], 12);
        Assert.Equal("0", strategy.ConfigureFit(1)[FedNova.MomentumKey]);
    }

    [Fact]
    public void Finish_Momentum_UsesMomentumFactors_AndExampleWeights()
    {
        // ρ = 0.9, n = [1, 3] → p = [0.25, 0.75]; x = [1, −1], η_s = 1.
        // A: τ = 2, a = 2.9,   d = [2, 4]/2.9    = [0.6896552, 1.3793103];
        // B: τ = 4, a = 9.049, d = [4, −4]/9.049 = [0.4420378, −0.4420378].
        // Σ p d = [0.25·0.6896552 + 0.75·0.4420378, 0.25·1.3793103 − 0.75·0.4420378] = [0.5039421, 0.0132992];
        // τ_eff = 0.25·2.9 + 0.75·9.049 = 7.51175; Δ = τ_eff·Σ p d = [3.7854874, 0.0999006]; x' = [4.7854874, −0.9000994].
        var strategy = new FedNova(clientMomentum: 0.9);
        var aggregator = strategy.BeginRound(1, new float[] { 1, -1 }, 2, 2);
        aggregator.Add(Update("a", 1, 2, [2, 4]));
        aggregator.Add(Update("b", 3, 4, [4, -4]));
        var result = aggregator.Finish([]);

        StrategyTestKit.Close([4.7854874, -0.9000994], result.Global, 2e-6);
        Assert.Equal(7.51175, result.Metrics["tau_eff"], 9);
    }

    [Fact]
    public void Finish_EqualSteps_EqualsFedAvg()
    {
        // With equal τ the normalisation cancels: Δ = τ·Σ p Δ/τ = Σ p Δ.
        ClientUpdate[] updates = [Update("a", 1, 3, [3, 6]), Update("b", 2, 3, [0, -3])];
        var nova = StrategyTestKit.Round(new FedNova(), [0, 0], updates);
        var avg = StrategyTestKit.Round(new FedAvg(), [0, 0], updates);

        StrategyTestKit.Close(avg.Global.Select(v => (double)v).ToArray(), nova.Global);
    }

    [Fact]
    public void Add_ZeroLocalSteps_IsRejected()
    {
        var aggregator = new FedNova().BeginRound(1, new float[] { 0 }, 1, 1);

        var error = Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, 0, [1])));
        Assert.Contains("local steps", error.Message, StringComparison.Ordinal);
    }
}
