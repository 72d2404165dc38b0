using Federated.Learning.Strategies;

namespace Federated.Learning.Tests.Strategies;

/// <summary>The checks every aggregator makes, run against every strategy the factory knows.</summary>
public sealed class UpdateValidationTests
{
    public static TheoryData<string> Names => new(StrategyFactory.Names);

    private static ClientUpdate Valid(string id, float[] delta, long examples = 1) => new()
    {
        ClientId = id,
        NumExamples = examples,
        Delta = delta,
        LocalSteps = 2,
        Tensors = new Dictionary<string, float[]> { [Scaffold.ControlDeltaKey] = new float[delta.Length] },
    };

    private static IRoundAggregator Begin(string name) =>
        StrategyFactory.Create(name, new Dictionary<string, string>()).BeginRound(1, new float[] { 1, 2, 3 }, 3, 10);

    [Theory]
    [MemberData(nameof(Names))]
    public void Add_WrongLength_NamesClientAndLengths(string name)
    {
        var aggregator = Begin(name);

        var error = Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("client-7", [1, 2])));
        Assert.Contains("client-7", error.Message, StringComparison.Ordinal);
        Assert.Contains("2 floats", error.Message, StringComparison.Ordinal);
        Assert.Contains("3", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, aggregator.Count);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Add_NonFiniteDelta_IsRejected_AndDoesNotPoisonTheModel(string name)
    {
        var aggregator = Begin(name);

        var nan = Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("byzantine", [1, float.NaN, 0])));
        Assert.Contains("non-finite", nan.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("broken", [float.PositiveInfinity, 0, 0])));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("broken", [0, 0, float.NegativeInfinity])));
        aggregator.Add(Valid("honest", [0, 0, 0], 5));

        var result = aggregator.Finish([new ClientFailure("byzantine", "rejected")]);
        Assert.Equal(1, result.Accepted);
        Assert.All(result.Global, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Add_NonPositiveExamples_OrDuplicateClient_IsRejected(string name)
    {
        var aggregator = Begin(name);

        Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("a", [1, 1, 1], examples: 0)));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("a", [1, 1, 1], examples: -3)));
        aggregator.Add(Valid("a", [1, 1, 1]));
        Assert.Throws<ArgumentException>(() => aggregator.Add(Valid("a", [1, 1, 1])));
        Assert.Equal(1, aggregator.Count);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Finish_NoUpdates_Throws_AndFinishTwiceThrows(string name)
    {
        var empty = Begin(name);
        var error = Assert.Throws<InvalidOperationException>(() => empty.Finish([new ClientFailure("a", "disconnected")]));
        Assert.StartsWith($"{name}: no updates", error.Message, StringComparison.Ordinal);

        var aggregator = Begin(name);
        aggregator.Add(Valid("a", [0, 0, 0]));
        aggregator.Finish([]);
        Assert.Throws<InvalidOperationException>(() => aggregator.Finish([]));
        Assert.Throws<InvalidOperationException>(() => aggregator.Add(Valid("b", [0, 0, 0])));
    }

    [Fact]
    public void BeginRound_EmptyModel_Throws() =>
        Assert.Throws<ArgumentException>(() => new FedAvg().BeginRound(1, ReadOnlyMemory<float>.Empty, 1, 1));
}
