using Federated.Learning.Strategies;

namespace Federated.Learning.Tests.Strategies;

/// <summary>Builders shared by the strategy tests.</summary>
internal static class StrategyTestKit
{
    public static ClientUpdate Update(string id, long examples, float[] delta, IReadOnlyDictionary<string, double>? metrics = null) => new()
    {
        ClientId = id,
        NumExamples = examples,
        Delta = delta,
        LocalSteps = 1,
        Metrics = metrics ?? new Dictionary<string, double>(),
    };

    /// <summary>One round: begin, add every update in order, finish.</summary>
    public static AggregationResult Round(IStrategy strategy, float[] global, IEnumerable<ClientUpdate> updates, int round = 1, int? available = null)
    {
        var list = updates.ToList();
        var aggregator = strategy.BeginRound(round, global, list.Count, available ?? list.Count);
        foreach (var update in list)
        {
            aggregator.Add(update);
        }

        return aggregator.Finish([]);
    }

    /// <summary>Asserts element-wise closeness.</summary>
    public static void Close(double[] expected, float[] actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]} (all: {string.Join(", ", actual)})");
        }
    }
}
