using Federated.Coordinator.Rounds;
using Federated.Learning.Compression;
using Federated.Learning.Strategies;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Tests.Transfers;

/// <summary>
/// Decoding uploads into the aggregate as their chunks arrive: the result equals decoding the completed uploads, and
/// every way a stream can go wrong leaves no trace in the aggregate and falls back to the ordinary path.
/// </summary>
public sealed class StreamingFoldsTests
{
    private const int Length = 5000;
    private const int Round = 3;
    private const int ChunkBytes = 1024;

    private static readonly float[] Global = Enumerable.Range(0, Length).Select(i => MathF.Sin(i) * 0.1f).ToArray();

    private static float[] Delta(int seed) => Enumerable.Range(0, Length).Select(i => MathF.Cos((i * 0.37f) + seed) * 0.01f).ToArray();

    private static IRoundAggregator NewAggregator() => new FedAvg().BeginRound(Round, Global, 3, 3);

    private static Payload Encoded(float[] delta, string codec = "q8")
    {
        var payload = new Payload { LayoutFingerprint = "fp" };
        PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, DeltaCodecs.Parse(codec).EncodeToArray(delta, new CodecRandom(9)), delta.Length);
        payload.Metadata["note"] = "x";
        return payload;
    }

    private static SealedPayload Seal(string agent, Payload payload) => new($"{agent}-t", payload, ChunkBytes);

    private static UploadChunkReceived Chunk(string agent, SealedPayload sealedPayload, int sequence, long examples) =>
        new(agent, sealedPayload.TransferId, sealedPayload.ToUploadHeader($"{agent}-task", Round, examples), sequence, sealedPayload.GetChunk(sequence).Data.Memory);

    private static TaskResult Result(string agent, SealedPayload sealedPayload, long examples) => new()
    {
        TaskId = $"{agent}-task",
        Round = Round,
        Ok = true,
        UploadTransferId = sealedPayload.TransferId,
        NumExamples = examples,
        Metrics = { ["train_loss"] = 0.5 },
    };

    private static void StreamAll(StreamingFolds folds, string agent, SealedPayload sealedPayload, long examples)
    {
        for (var s = 0; s < sealedPayload.ChunkCount; s++)
        {
            folds.OnChunk(Chunk(agent, sealedPayload, s, examples));
        }
    }

    /// <summary>The same updates folded after their uploads completed, as the coordinator does without streaming.</summary>
    private static float[] Reference(params (string Agent, Payload Payload, long Examples)[] updates)
    {
        var aggregator = NewAggregator();
        foreach (var (agent, payload, examples) in updates)
        {
            if (!RoundCompression.TryFoldEncoded(aggregator, agent, new TaskResult { NumExamples = examples }, payload, Length))
            {
                aggregator.Add(new ClientUpdate { ClientId = agent, NumExamples = examples, Delta = RoundCompression.ReadDelta(payload, Length) });
            }
        }

        return aggregator.Finish([]).Global;
    }

    private static void Close(float[] expected, float[] actual) =>
        Assert.All(expected.Zip(actual), p => Assert.Equal(p.First, p.Second, 1e-6f));

    [Fact]
    public void StreamedUploads_CommitAtTheirResults_AndGiveTheSameModelAsDecodingCompletedUploads()
    {
        var (pa, pb) = (Encoded(Delta(1)), Encoded(Delta(2), "topk:ratio=0.1+q8"));
        var (sa, sb) = (Seal("a", pa), Seal("b", pb));
        Assert.True(sa.ChunkCount > 3);
        var aggregator = NewAggregator();
        var folds = StreamingFolds.For(aggregator, Round, uplinkEncoded: true)!;

        // Interleaved chunks of two uploads, with resent (duplicate) chunks; chunk 0 again would mean a restart.
        for (var s = 0; s < Math.Max(sa.ChunkCount, sb.ChunkCount); s++)
        {
            if (s < sa.ChunkCount)
            {
                folds.OnChunk(Chunk("a", sa, s, 100));
                if (s > 0)
                {
                    folds.OnChunk(Chunk("a", sa, s, 100));
                }
            }

            if (s < sb.ChunkCount)
            {
                folds.OnChunk(Chunk("b", sb, s, 300));
            }
        }

        Assert.True(folds.TryCommit("a", Result("a", sa, 100), pa, Length));
        Assert.True(folds.TryCommit("b", Result("b", sb, 300), pb, Length));
        var result = aggregator.Finish([]);

        Assert.Equal((2, 0), (folds.Committed, folds.Aborted));
        Assert.Equal(2, result.Accepted);
        Close(Reference(("a", pa, 100), ("b", pb, 300)), result.Global);
    }

    [Fact]
    public void UploadRestartedFromChunkZero_StartsOver_WithoutCountingTheFirstAttempt()
    {
        var pa = Encoded(Delta(1));
        var sa = Seal("a", pa);
        var aggregator = NewAggregator();
        var folds = StreamingFolds.For(aggregator, Round, uplinkEncoded: true)!;

        StreamAll(folds, "a", sa, 100); // e.g. the SHA-256 failed at the end and the agent sends it all again
        StreamAll(folds, "a", sa, 100);

        Assert.True(folds.TryCommit("a", Result("a", sa, 100), pa, Length));
        Close(Reference(("a", pa, 100)), aggregator.Finish([]).Global);
    }

    [Theory]
    [InlineData("gap")]
    [InlineData("examples")]
    [InlineData("no-count")]
    [InlineData("dense")]
    public void BrokenOrUnusableStreams_FallBack_AndLeaveNoTraceInTheAggregate(string fault)
    {
        var (pa, pb) = (Encoded(Delta(1)), Encoded(Delta(2)));
        if (fault == "dense")
        {
            pa = new Payload { LayoutFingerprint = "fp" };
            PayloadCodec.AddDense(pa, PayloadCodec.ModelTensor, Delta(1));
        }

        var (sa, sb) = (Seal("a", pa), Seal("b", pb));
        var aggregator = NewAggregator();
        var folds = StreamingFolds.For(aggregator, Round, uplinkEncoded: true)!;
        var declared = fault == "no-count" ? 0 : 100;
        for (var s = 0; s < sa.ChunkCount; s++)
        {
            if (fault != "gap" || s != 2)
            {
                folds.OnChunk(Chunk("a", sa, s, declared));
            }
        }

        StreamAll(folds, "b", sb, 200);
        var resultA = Result("a", sa, fault == "examples" ? 150 : 100);

        // a falls back to the ordinary path, which folds the completed upload; b was streamed.
        Assert.False(folds.TryCommit("a", resultA, pa, Length));
        if (fault == "dense")
        {
            aggregator.Add(new ClientUpdate { ClientId = "a", NumExamples = 100, Delta = PayloadCodec.ReadDense(pa, PayloadCodec.ModelTensor) });
        }
        else
        {
            Assert.True(RoundCompression.TryFoldEncoded(aggregator, "a", resultA, pa, Length));
        }

        Assert.True(folds.TryCommit("b", Result("b", sb, 200), pb, Length));
        Close(Reference(("a", pa, resultA.NumExamples), ("b", pb, 200)), aggregator.Finish([]).Global);
        Assert.Equal(1, folds.Committed);
    }

    [Theory]
    [InlineData("nan-scale")]
    [InlineData("truncated")]
    public void MalformedCodecBytes_FallBack_AndTheOrdinaryPathRejectsThem(string damage)
    {
        var values = Delta(1);
        var encoded = DeltaCodecs.Parse("q8").EncodeToArray(values, new CodecRandom(9));
        if (damage == "truncated")
        {
            encoded = encoded[..^7];
        }
        else
        {
            BitConverter.TryWriteBytes(encoded.AsSpan(6), float.NaN);
        }

        var pa = new Payload { LayoutFingerprint = "fp" };
        PayloadCodec.AddEncoded(pa, PayloadCodec.ModelTensor, encoded, values.Length);
        var sa = Seal("a", pa);
        var aggregator = NewAggregator();
        var folds = StreamingFolds.For(aggregator, Round, uplinkEncoded: true)!;

        StreamAll(folds, "a", sa, 100);

        Assert.False(folds.TryCommit("a", Result("a", sa, 100), pa, Length));
        Assert.Equal(1, folds.Aborted);
        Assert.Throws<ArgumentException>(() => RoundCompression.TryFoldEncoded(aggregator, "a", Result("a", sa, 100), pa, Length));
    }

    [Fact]
    public void StreamsNeverCommitted_AreTakenOutBeforeTheRoundFinishes()
    {
        var (pa, pb) = (Encoded(Delta(1)), Encoded(Delta(2)));
        var (sa, sb) = (Seal("a", pa), Seal("b", pb));
        var aggregator = NewAggregator();
        var folds = StreamingFolds.For(aggregator, Round, uplinkEncoded: true)!;

        StreamAll(folds, "a", sa, 100); // complete, but its result never comes
        folds.OnChunk(Chunk("c", Seal("c", Encoded(Delta(3))), 0, 100)); // half an upload
        StreamAll(folds, "b", sb, 100);
        Assert.True(folds.TryCommit("b", Result("b", sb, 100), pb, Length));
        folds.AbortAll();

        Assert.Equal(2, folds.Aborted);
        Close(Reference(("b", pb, 100)), aggregator.Finish([]).Global);
    }

    [Fact]
    public void For_OnlyWeightedMeansWithEncodedUploads_Stream()
    {
        Assert.NotNull(StreamingFolds.For(NewAggregator(), Round, uplinkEncoded: true));
        Assert.Null(StreamingFolds.For(NewAggregator(), Round, uplinkEncoded: false));
        Assert.Null(StreamingFolds.For(new DeterministicAggregator(NewAggregator()), Round, uplinkEncoded: true));
        Assert.Null(StreamingFolds.For(new FedNova().BeginRound(Round, Global, 3, 3), Round, uplinkEncoded: true));
    }
}
