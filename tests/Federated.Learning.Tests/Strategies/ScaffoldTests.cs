using Federated.Learning.Strategies;

namespace Federated.Learning.Tests.Strategies;

public sealed class ScaffoldTests
{
    private static ClientUpdate Update(string id, long examples, float[] delta, float[] controlDelta) => new()
    {
        ClientId = id,
        NumExamples = examples,
        Delta = delta,
        Tensors = new Dictionary<string, float[]> { [Scaffold.ControlDeltaKey] = controlDelta },
    };

    [Fact]
    public void TwoRounds_UpdateModelWithUnweightedMean_AndControlWithSOverN()
    {
        var strategy = new Scaffold(globalLearningRate: 0.5);
        Assert.Equal("true", strategy.ConfigureFit(1)[Scaffold.ConfigKey]);
        Assert.Empty(strategy.ServerTensors(1)); // c = 0 is implied before the first round

        // Round 1, N = 4 enrolled, |S| = 2; the example counts (1 and 100) must not matter.
        // x' = [1, 1] + 0.5·([2, 0] + [0, 2]) / 2 = [1.5, 1.5].
        // c  = 0 + (2/4)·([4, −4] + [0, 8]) / 2 = 0.5·[2, 2] = [1, 1].
        var aggregator = strategy.BeginRound(1, new float[] { 1, 1 }, 2, 4);
        aggregator.Add(Update("a", 1, [2, 0], [4, -4]));
        aggregator.Add(Update("b", 100, [0, 2], [0, 8]));
        var first = aggregator.Finish([new ClientFailure("c", "late")]);

        StrategyTestKit.Close([1.5, 1.5], first.Global);
        Assert.Equal(1, first.Metrics["failures"]);
        StrategyTestKit.Close([1, 1], strategy.ServerTensors(2)[Scaffold.ServerControlKey]);

        // Round 2, |S| = 1 of N = 4: x'' = [1.5, 1.5] + 0.5·[2, −2] = [2.5, 0.5]; c = [1, 1] + (1/4)·[4, 0] = [2, 1].
        aggregator = strategy.BeginRound(2, first.Global, 1, 4);
        aggregator.Add(Update("a", 7, [2, -2], [4, 0]));
        var second = aggregator.Finish([]);

        StrategyTestKit.Close([2.5, 0.5], second.Global);
        StrategyTestKit.Close([2, 1], strategy.SaveState()[Scaffold.ServerControlKey]);
    }

    [Fact]
    public void Add_WithoutControlDelta_IsRejected()
    {
        var aggregator = new Scaffold().BeginRound(1, new float[] { 0, 0 }, 1, 1);

        var error = Assert.Throws<ArgumentException>(() => aggregator.Add(StrategyTestKit.Update("a", 1, [1, 1])));
        Assert.Contains(Scaffold.ControlDeltaKey, error.Message, StringComparison.Ordinal);
        Assert.Contains("'a'", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [1, 1], [1])));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [1, 1], [float.NaN, 0])));
        Assert.Equal(0, aggregator.Count);
    }

    [Fact]
    public void Add_MoreUpdatesThanEnrolled_IsRejected()
    {
        var aggregator = new Scaffold().BeginRound(1, new float[] { 0 }, 1, 1);
        aggregator.Add(Update("a", 1, [1], [1]));

        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("b", 1, [1], [1])));
    }

    [Fact]
    public void SaveLoad_RoundTrip_RestoresTheControlVariate()
    {
        var original = new Scaffold();
        var aggregator = original.BeginRound(1, new float[] { 0, 0, 0 }, 1, 2);
        aggregator.Add(Update("a", 1, [1, 2, 3], [0.5f, -0.25f, 2]));
        var x1 = aggregator.Finish([]).Global;

        var restored = new Scaffold();
        restored.LoadState(original.SaveState());
        Assert.Equal(original.ServerTensors(2)[Scaffold.ServerControlKey], restored.ServerTensors(2)[Scaffold.ServerControlKey]);

        float[] Next(Scaffold s)
        {
            var a = s.BeginRound(2, x1, 2, 2);
            a.Add(Update("b", 1, [0.1f, 0.2f, 0.3f], [1, 1, 1]));
            a.Add(Update("a", 1, [0.3f, 0.2f, 0.1f], [-1, 0.5f, 0]));
            return a.Finish([]).Global;
        }

        Assert.Equal(Next(original), Next(restored));
        Assert.Equal(original.SaveState()[Scaffold.ServerControlKey], restored.SaveState()[Scaffold.ServerControlKey]);
        Assert.Throws<InvalidOperationException>(() => restored.BeginRound(3, new float[4], 1, 2));
    }
}
