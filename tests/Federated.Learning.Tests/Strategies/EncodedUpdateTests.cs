using Federated.Learning.Compression;
using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Strategies;

/// <summary>Weighted means fold codec-encoded deltas as they would fold their decoding; other aggregators do not claim to.</summary>
public sealed class EncodedUpdateTests
{
    private static readonly float[] Global = [1, 2, 3, 4, 5, 6, 7, 8];

    private static EncodedClientUpdate Encoded(string id, long examples, string codec, float[] delta) => new()
    {
        ClientId = id,
        NumExamples = examples,
        EncodedDelta = DeltaCodecs.Parse(codec).EncodeToArray(delta, new CodecRandom(3)),
        Metrics = new Dictionary<string, double> { ["loss"] = id == "a" ? 1.0 : 3.0 },
    };

    [Theory]
    [InlineData("fedavg")]
    [InlineData("fedadam")]
    [InlineData("fedavgm")]
    public void WeightedMean_EncodedAndDecodedUpdates_GiveTheSameModel(string strategy)
    {
        float[] deltaA = [0.5f, 0, 0, -1, 0, 0, 2, 0];
        float[] deltaB = [0.25f, 0.25f, 0.25f, 0.25f, -0.25f, -0.25f, -0.25f, -0.25f];
        var encodedA = Encoded("a", 30, "topk:ratio=0.375+f32", deltaA);
        var encodedB = Encoded("b", 10, "f32", deltaB);

        var aggregator = StrategyFactory.Create(strategy, new Dictionary<string, string>()).BeginRound(1, Global.ToArray(), 2, 2);
        var sink = Assert.IsAssignableFrom<IEncodedUpdateAggregator>(aggregator);
        sink.AddEncoded(encodedA);
        sink.AddEncoded(encodedB);
        var folded = aggregator.Finish([]);
        var dense = Round(StrategyFactory.Create(strategy, new Dictionary<string, string>()), Global.ToArray(),
            [Update("a", 30, deltaA, encodedA.Metrics), Update("b", 10, deltaB, encodedB.Metrics)]);

        Close(dense.Global.Select(v => (double)v).ToArray(), folded.Global, 1e-6);
        Assert.Equal(2, folded.Accepted);
        Assert.Equal(1.5, folded.Metrics["loss"], 9); // (30·1 + 10·3) / 40
        Assert.Equal(40, folded.Metrics["examples"]);
    }

    [Fact]
    public void WeightedMean_MalformedOrDuplicateEncodedUpdate_IsRejectedAndFoldsNothing()
    {
        var aggregator = new FedAvg().BeginRound(1, Global.ToArray(), 3, 3);
        var sink = (IEncodedUpdateAggregator)aggregator;
        var good = Encoded("a", 10, "q8", [1, 1, 1, 1, 1, 1, 1, 1]);
        var truncated = new EncodedClientUpdate { ClientId = "b", NumExamples = 10, EncodedDelta = good.EncodedDelta[..^2] };
        var wrongLength = Encoded("c", 10, "f32", [1, 1, 1]);

        sink.AddEncoded(good);
        var e = Assert.Throws<ArgumentException>(() => sink.AddEncoded(truncated));
        Assert.Throws<ArgumentException>(() => sink.AddEncoded(wrongLength));
        Assert.Throws<ArgumentException>(() => sink.AddEncoded(Encoded("a", 10, "f32", new float[8])));
        Assert.Throws<ArgumentException>(() => sink.AddEncoded(Encoded("d", 0, "f32", new float[8])));
        var result = aggregator.Finish([]);

        Assert.Contains("client 'b' sent a malformed encoded delta", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, result.Accepted);
        Close(Global.Select(v => v + 1.0).ToArray(), result.Global, 1e-6); // only a's +1 (q8 is exact on ±max)
    }

    [Fact]
    public void Decorators_AndStrategiesThatNeedMoreThanTheDelta_DoNotFoldEncodedDeltas()
    {
        var global = Global.ToArray();

        Assert.IsNotAssignableFrom<IEncodedUpdateAggregator>(new DeterministicStrategy(new FedAvg()).BeginRound(1, global, 2, 2));
        Assert.IsNotAssignableFrom<IEncodedUpdateAggregator>(StrategyFactory.Create("scaffold", new Dictionary<string, string>()).BeginRound(1, global, 2, 2));
        Assert.IsNotAssignableFrom<IEncodedUpdateAggregator>(StrategyFactory.Create("fednova", new Dictionary<string, string>()).BeginRound(1, global, 2, 2));
    }
}
