using Federated.Learning.Continual;
using Federated.Learning.Strategies;

namespace Federated.Learning.Tests.Continual;

public sealed class FisherConsolidationTests
{
    [Fact]
    public void WeightedMean_WeighsByExamples()
    {
        // (1·[1, 4] + 3·[5, 0]) / 4 = [4, 1].
        var mean = FisherConsolidation.WeightedMean([([1f, 4f], 1), ([5f, 0f], 3)]);
        Assert.Equal([4f, 1f], mean);
        Assert.Throws<ArgumentException>(() => FisherConsolidation.WeightedMean([]));
        Assert.Throws<ArgumentException>(() => FisherConsolidation.WeightedMean([([1f], 1), ([1f, 2f], 1)]));
        Assert.Throws<ArgumentException>(() => FisherConsolidation.WeightedMean([([1f], 0)]));
    }

    [Fact]
    public void Strategy_ConsolidatesUploadedFisher_AndSendsItWithTheRoundStartAnchor()
    {
        var strategy = new FisherConsolidationStrategy(new FedAvg());
        Assert.Equal("true", strategy.ConfigureFit(1)[FisherConsolidation.ConfigKey]);
        Assert.Empty(strategy.ServerTensors(1));

        float[] start = [10f, 20f];
        var round = strategy.BeginRound(1, start, 3, 3);
        round.Add(Update("a", 1, [2f, 2f], fisher: [1f, 4f]));
        round.Add(Update("b", 3, [6f, 6f], fisher: [5f, 0f]));
        round.Add(Update("c", 4, [0f, 0f]));
        var result = round.Finish([]);

        // FedAvg over all three updates, the Fisher mean over the two that sent one.
        Assert.Equal(10f + ((1 * 2f) + (3 * 6f)) / 8, result.Global[0], 5);
        Assert.Equal(2, result.Metrics["continual_fisher_agents"]);
        var sent = strategy.ServerTensors(2);
        Assert.Equal([4f, 1f], sent[FisherConsolidation.FisherKey]);
        Assert.Equal(start, sent[FisherConsolidation.AnchorKey]);

        // A round without uploads keeps the consolidated pair; the pair survives SaveState/LoadState.
        var quiet = strategy.BeginRound(2, result.Global, 1, 1);
        quiet.Add(Update("a", 1, [1f, 1f]));
        quiet.Finish([]);
        var restored = new FisherConsolidationStrategy(new FedAvg());
        restored.LoadState(strategy.SaveState());
        Assert.Equal([4f, 1f], restored.ServerTensors(3)[FisherConsolidation.FisherKey]);
        Assert.Equal(start, restored.ServerTensors(3)[FisherConsolidation.AnchorKey]);
    }

    [Fact]
    public void Strategy_RejectsAFisherDiagonalOfTheWrongLength()
    {
        var round = new FisherConsolidationStrategy(new FedAvg()).BeginRound(1, new float[2], 1, 1);
        Assert.Throws<ArgumentException>(() => round.Add(Update("a", 1, [0f, 0f], fisher: [1f])));
    }

    private static ClientUpdate Update(string id, long examples, float[] delta, float[]? fisher = null) => new()
    {
        ClientId = id,
        NumExamples = examples,
        Delta = delta,
        Tensors = fisher is null ? new Dictionary<string, float[]>() : new Dictionary<string, float[]> { [FisherConsolidation.FisherKey] = fisher },
    };
}
