using Federated.Learning.Compression;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>Compressed transfers over a real coordinator with scripted agents: encoded uploads, their rejection, downlink deltas.</summary>
public sealed class CompressionTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-compression-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private Dictionary<string, string?> Settings(int rounds, string uplink = "none", string downlink = "none")
    {
        var settings = TestCoordinator.Settings(_state, rounds);
        settings["Coordinator:Compression:Uplink"] = uplink;
        settings["Coordinator:Compression:Downlink"] = downlink;
        return settings;
    }

    private Dictionary<string, string> MetricsRow(int round)
    {
        var lines = File.ReadAllLines(Path.Combine(_state, "rounds.csv"));
        return lines[0].Split(',').Zip(lines[round].Split(',')).ToDictionary(p => p.First, p => p.Second);
    }

    /// <summary>A coordinator with two connected scripted agents, each holding its first train task.</summary>
    private sealed class TwoAgents : IAsyncDisposable
    {
        private TwoAgents(TestCoordinator coordinator, ScriptedAgent a, ScriptedAgent b, TrainTask taskA, TrainTask taskB) =>
            (Coordinator, A, B, TaskA, TaskB) = (coordinator, a, b, taskA, taskB);

        public TestCoordinator Coordinator { get; }

        public ScriptedAgent A { get; }

        public ScriptedAgent B { get; }

        public TrainTask TaskA { get; }

        public TrainTask TaskB { get; }

        public static async Task<TwoAgents> StartAsync(Dictionary<string, string?> settings, string a, string b)
        {
            var coordinator = await TestCoordinator.StartAsync(settings);
            var agentA = await ScriptedAgent.EnrollAsync(coordinator.Address, a);
            var agentB = await ScriptedAgent.EnrollAsync(coordinator.Address, b);
            await agentA.ConnectAsync();
            await agentB.ConnectAsync();
            var taskA = (await agentA.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var taskB = (await agentB.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            return new TwoAgents(coordinator, agentA, agentB, taskA, taskB);
        }

        public async ValueTask DisposeAsync()
        {
            await B.DisposeAsync();
            await A.DisposeAsync();
            await Coordinator.DisposeAsync();
        }
    }

    private static async Task<float[]> DownloadGlobalAsync(ScriptedAgent agent, TrainTask task) =>
        PayloadCodec.ReadDense(PayloadCodec.Parse(await agent.DownloadAsync(task.Model), task.LayoutFingerprint), PayloadCodec.ModelTensor);

    /// <summary>Uploads <paramref name="update"/> and reports the task done.</summary>
    private static async Task AnswerAsync(ScriptedAgent agent, TrainTask task, Payload update)
    {
        var sealedPayload = new SealedPayload($"{agent.Id}-{task.TaskId}", update, agent.Enrolment.ChunkBytes);
        await agent.UploadAsync(sealedPayload, task.TaskId, task.Round, 0, sealedPayload.ChunkCount, numExamples: 100);
        await agent.SendResultAsync(new TaskResult
        {
            TaskId = task.TaskId,
            Round = task.Round,
            Ok = true,
            UploadTransferId = sealedPayload.TransferId,
            NumExamples = 100,
            LocalSteps = 3,
            Metrics = { ["train_seconds"] = 0.1 },
        });
    }

    private static Payload EncodedUpdate(TrainTask task, string codec, float[] delta, Func<byte[], byte[]>? damage = null)
    {
        var encoded = DeltaCodecs.Parse(codec).EncodeToArray(delta, new CodecRandom(5));
        var update = new Payload { LayoutFingerprint = task.LayoutFingerprint };
        PayloadCodec.AddEncoded(update, PayloadCodec.ModelTensor, damage is null ? encoded : damage(encoded), delta.Length);
        return update;
    }

    private static Payload DenseUpdate(TrainTask task, float[] delta)
    {
        var update = new Payload { LayoutFingerprint = task.LayoutFingerprint };
        PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, delta);
        return update;
    }

    [Fact]
    public async Task Result_CorruptCodecPayload_IsRejectedWithAReasonAndTheRoundGoesOn()
    {
        await using var run = await TwoAgents.StartAsync(Settings(rounds: 1, uplink: "q8"), "bad", "good");
        var (coordinator, bad, good, badTask, goodTask) = (run.Coordinator, run.A, run.B, run.TaskA, run.TaskB);
        var global = await DownloadGlobalAsync(good, goodTask);
        var step = Enumerable.Repeat(0.01f, global.Length).ToArray();

        // The header still declares the right element count (so the payload parses); the body is cut short.
        await AnswerAsync(bad, badTask, EncodedUpdate(badTask, "q8", step, damage: bytes => bytes[..^7]));
        var rejected = await bad.NextAsync(CoordinatorMessage.KindOneofCase.Rejected);
        await AnswerAsync(good, goodTask, EncodedUpdate(goodTask, "q8", step));
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        Assert.Equal("q8:block=512", badTask.Config[CompressionKeys.UplinkCodec]);
        Assert.Equal("true", badTask.Config[CompressionKeys.ErrorFeedback]);
        Assert.Contains("malformed encoded delta", rejected.Rejected.Reason, StringComparison.Ordinal);
        Assert.Contains("truncated", rejected.Rejected.Reason, StringComparison.Ordinal);
        var row = MetricsRow(1);
        Assert.Equal(("1", "1", "true"), (row["results"], row["failures"], row["ok"]));
        Assert.True(coordinator.Logs.Contains("update of agent bad rejected"));
        Assert.True(coordinator.Logs.Contains("Round 1: 1 updates decoded while their uploads streamed in, 1 streams fell back"));
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task Round_EncodedDeltas_AreFoldedIntoTheGlobalModel()
    {
        await using var run = await TwoAgents.StartAsync(Settings(rounds: 1, uplink: "f32"), "a", "b");
        var (coordinator, a, b, taskA, taskB) = (run.Coordinator, run.A, run.B, run.TaskA, run.TaskB);
        var global = await DownloadGlobalAsync(a, taskA);

        // Lossless codec, a sparse and a dense payload: +0.02 on the even coordinates from a, +0.02 on all from b.
        await AnswerAsync(a, taskA, EncodedUpdate(taskA, "topk:ratio=0.5+f32", global.Select((_, i) => i % 2 == 0 ? 0.02f : 0f).ToArray()));
        await AnswerAsync(b, taskB, EncodedUpdate(taskB, "f32", Enumerable.Repeat(0.02f, global.Length).ToArray()));
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        // Equal weights: the mean delta is 0.02 on even coordinates and 0.01 on odd ones.
        var expected = global.Select((v, i) => v + (i % 2 == 0 ? 0.02f : 0.01f)).ToArray();
        Assert.Equal(Coordinator.Rounds.RoundRunner.Checksum(expected), coordinator.Status.GlobalChecksum);
        Assert.True(coordinator.Logs.Contains("Round 1: 2 updates decoded while their uploads streamed in, 0 streams fell back"));
        Assert.True(long.Parse(MetricsRow(1)["up_payload_bytes_per_agent"], System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task Downlink_KnownAgentsGetDeltasThatRebuildTheModel_OthersTheFullModel()
    {
        var settings = Settings(rounds: 2, downlink: "q8");
        settings["Coordinator:RoundDeadlineSeconds"] = "3";
        await using var run = await TwoAgents.StartAsync(settings, "a", "b");
        var (coordinator, a, b, taskA1, taskB1) = (run.Coordinator, run.A, run.B, run.TaskA, run.TaskB);

        // Round 1: nobody's model is known, so both got the shared full model; a answers, b stays silent.
        var payloadA1 = PayloadCodec.Parse(await a.DownloadAsync(taskA1.Model), taskA1.LayoutFingerprint);
        var held = PayloadCodec.ReadDense(payloadA1, PayloadCodec.ModelTensor);
        await AnswerAsync(a, taskA1, DenseUpdate(taskA1, held.Select((_, i) => 0.003f * MathF.Sin(i)).ToArray()));

        // Round 2: a held round 1's model and gets a q8 delta against it; b never confirmed, so it gets the full model.
        var taskA2 = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var taskB2 = (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var payloadA2 = PayloadCodec.Parse(await a.DownloadAsync(taskA2.Model), taskA2.LayoutFingerprint);
        var payloadB2 = PayloadCodec.Parse(await b.DownloadAsync(taskB2.Model), taskB2.LayoutFingerprint);
        var globalB2 = PayloadCodec.ReadDense(payloadB2, PayloadCodec.ModelTensor);
        var delta = PayloadCodec.GetTensor(payloadA2, PayloadCodec.ModelTensor, held.Length);
        DownlinkDeltaEncoder.ApplyDelta(delta.Data.Span, held);
        await AnswerAsync(a, taskA2, DenseUpdate(taskA2, new float[held.Length]));
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 2, TimeSpan.FromSeconds(30), "round 2");

        Assert.Equal(taskA1.Model.TransferId, taskB1.Model.TransferId);
        Assert.Equal(payloadA1.Metadata[CompressionKeys.ModelVersion], payloadA2.Metadata[CompressionKeys.BaseVersion]);
        Assert.NotEqual(payloadA2.Metadata[CompressionKeys.BaseVersion], payloadA2.Metadata[CompressionKeys.ModelVersion]);
        Assert.Equal(TensorEncoding.Codec, delta.Encoding);
        Assert.NotEqual(taskA2.Model.TransferId, taskB2.Model.TransferId);
        Assert.False(payloadB2.Metadata.ContainsKey(CompressionKeys.BaseVersion));
        Assert.Equal(payloadA2.Metadata[CompressionKeys.ModelVersion], payloadB2.Metadata[CompressionKeys.ModelVersion]);
        Assert.True(taskA2.Model.TotalBytes * 3 < taskB2.Model.TotalBytes, $"delta {taskA2.Model.TotalBytes} B vs full {taskB2.Model.TotalBytes} B");

        // The rebuilt model is round 2's global up to q8's error on the round's change (|error| < max|Δ| / 127).
        var bound = 0.003f / 127 + 1e-6f;
        Assert.All(held.Zip(globalB2), p => Assert.InRange(p.First, p.Second - bound, p.Second + bound));
        Assert.Contains(held.Zip(globalB2), p => p.First != p.Second); // lossy: the rebuilt model is the replica, not the global
        Assert.Empty(coordinator.Logs.Errors);
    }
}
