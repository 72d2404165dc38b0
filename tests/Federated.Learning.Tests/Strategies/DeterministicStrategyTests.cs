using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Strategies;

public sealed class DeterministicStrategyTests
{
    // In float32, 1e8 + 1 = 1e8 (the spacing at 1e8 is 8), so the sum of 1e8, 1 and −1e8 depends on the order:
    // (1e8 + 1) − 1e8 = 0 but (1e8 − 1e8) + 1 = 1.
    private static readonly ClientUpdate A = Update("a", 1, [1e8f, 2]);
    private static readonly ClientUpdate B = Update("b", 1, [1, 2]);
    private static readonly ClientUpdate C = Update("c", 1, [-1e8f, 2]);

    [Fact]
    public void PlainIncremental_ArrivalOrderChangesTheFloatResult()
    {
        // Documents why the wrapper exists: a, b, c → (1e8 + 1 − 1e8)/3 = 0; a, c, b → (0 + 1)/3 = 1/3.
        var abc = Round(new FedAvg(), [0, 0], [A, B, C]).Global;
        var acb = Round(new FedAvg(), [0, 0], [A, C, B]).Global;

        Assert.Equal(0f, abc[0]);
        Assert.Equal(1f / 3, acb[0], 6);
        Assert.NotEqual(abc[0], acb[0]);
    }

    [Fact]
    public void Deterministic_AnyArrivalOrder_GivesBitIdenticalModels()
    {
        ClientUpdate[][] orders = [[C, B, A], [B, A, C], [A, C, B]];
        var results = orders.Select(order => Round(new DeterministicStrategy(new FedAvg()), [0, 0], order).Global).ToList();

        foreach (var result in results)
        {
            Assert.Equal(results[0], result);
        }

        // Sorted by id: a, b, c → (1e8 + 1 − 1e8)/3 = 0, and 2 in the second element.
        Assert.Equal([0f, 2f], results[0]);
    }

    [Fact]
    public void Deterministic_StatefulStrategies_SameStateWhateverTheOrder()
    {
        var first = new DeterministicStrategy(new FedAdam());
        var second = new DeterministicStrategy(new FedAdam());
        Round(first, [0, 0], [A, B, C]);
        Round(second, [0, 0], [C, A, B]);

        Assert.Equal(first.SaveState()["fedadam.m"], second.SaveState()["fedadam.m"]);
        Assert.Equal(first.SaveState()["fedadam.v"], second.SaveState()["fedadam.v"]);
        Assert.Equal("fedadam", first.Name);
    }

    [Fact]
    public void Deterministic_IsNotIncremental_AndStillRejectsBadUpdatesOnArrival()
    {
        var aggregator = new DeterministicStrategy(new Scaffold()).BeginRound(1, new float[] { 0, 0 }, 2, 2);

        Assert.False(aggregator.IsIncremental);
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [1, 1]))); // no control delta
        Assert.Throws<ArgumentException>(() => aggregator.Add(Update("a", 1, [1]))); // wrong length
        var good = new ClientUpdate
        {
            ClientId = "a",
            NumExamples = 1,
            Delta = [1, 1],
            Tensors = new Dictionary<string, float[]> { [Scaffold.ControlDeltaKey] = [0, 0] },
        };
        aggregator.Add(good);
        Assert.Throws<ArgumentException>(() => aggregator.Add(good)); // duplicate client
        Assert.Equal(1, aggregator.Count);
        Assert.Equal([1f, 1f], aggregator.Finish([]).Global);
    }

    [Fact]
    public void Deterministic_NoUpdates_Throws()
    {
        var aggregator = new DeterministicStrategy(new FedAvg()).BeginRound(1, new float[] { 0 }, 1, 1);

        var error = Assert.Throws<InvalidOperationException>(() => aggregator.Finish([]));
        Assert.Contains("no updates", error.Message, StringComparison.Ordinal);
    }
}
