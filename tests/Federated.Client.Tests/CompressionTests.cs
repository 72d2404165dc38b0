using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Learning.Checkpoints;
using Federated.Learning.Compression;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

/// <summary>The agent's compressed transfers: error feedback kept across restarts, downlink deltas applied to the held model.</summary>
public sealed class CompressionTests : IDisposable
{
    private const string Codec = "topk:ratio=0.05";
    private readonly TempDirectory _dir = new();
    private readonly AgentStateStore _store;
    private readonly ModelWeights _reference;
    private readonly torch.nn.Module<torch.Tensor, torch.Tensor> _referenceModel;

    public CompressionTests()
    {
        _store = new AgentStateStore(_dir.Path, NullLogger<AgentStateStore>.Instance);
        using var probe = Data();
        _referenceModel = ModelFactory.Create("mlp", ModelShape.FromSample(probe.SampleShape, probe.NumClasses), torch.CPU, seed: 3);
        _reference = new ModelWeights(_referenceModel);
    }

    public void Dispose()
    {
        _referenceModel.Dispose();
        _dir.Dispose();
    }

    private static TensorDataset Data() =>
        LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 400, Clients = 4, Index = 1, MaxExamples = 64 }, torch.CPU);

    private string Fingerprint => _reference.Layout.Fingerprint;

    /// <summary>A fresh agent process's training service over the state directory (as after a restart).</summary>
    private LocalTrainingService StartAgent() =>
        new(Data(), ComputeContext.Cpu, _store, _store.Load() with { AgentId = "a" }, NullLogger.Instance, TimeProvider.System);

    private TrainTask Task(int round, string? codec = Codec) => new()
    {
        TaskId = $"t{round}",
        Round = round,
        ModelName = "mlp",
        LayoutFingerprint = Fingerprint,
        Training = new TrainingConfig { Epochs = 1, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.1, Seed = round },
        Config = { [CompressionKeys.UplinkCodec] = codec ?? "", [CompressionKeys.ErrorFeedback] = "true" },
    };

    private byte[] FullModel(float[] global, string? version = null)
    {
        var payload = new Payload { LayoutFingerprint = Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, global);
        if (version is not null)
        {
            payload.Metadata[CompressionKeys.ModelVersion] = version;
        }

        return payload.ToByteArray();
    }

    /// <summary>Trains one round and returns (the decoded upload, the delta the agent actually trained: saved local − global).</summary>
    private (float[] Sent, float[] Delta) TrainRound(LocalTrainingService service, TrainTask task, byte[] payload, float[] global)
    {
        var outcome = service.Train(task, payload, $"a-{task.TaskId}", 4096, CancellationToken.None);
        service.Persist(new AgentState { AgentId = "a", LastRound = task.Round, LastTaskId = task.TaskId });
        var update = PayloadCodec.Parse(outcome.Update.Bytes, Fingerprint);
        var tensor = PayloadCodec.GetTensor(update, PayloadCodec.ModelTensor, global.Length);
        Assert.Equal(TensorEncoding.Codec, tensor.Encoding);
        var sent = new float[global.Length];
        DeltaCodecs.Decode(tensor.Data.Span, sent);

        ModelCheckpoint.Load(_store.ModelPath, _reference);
        var local = _reference.Flatten();
        var delta = new float[global.Length];
        WeightVectors.Delta(local, global, delta);
        return (sent, delta);
    }

    /// <summary>Error feedback's invariant: sent + residual after = delta + residual before.</summary>
    private static void AssertCarried(float[] sent, ReadOnlySpan<float> residualAfter, float[] delta, float[] residualBefore)
    {
        for (var i = 0; i < delta.Length; i++)
        {
            var expected = delta[i] + residualBefore[i];
            Assert.True(Math.Abs(sent[i] + residualAfter[i] - expected) <= 1e-6f + 1e-5f * Math.Abs(expected),
                $"coordinate {i}: sent {sent[i]} + residual {residualAfter[i]} != delta {delta[i]} + carried {residualBefore[i]}");
        }
    }

    [Fact]
    public void ErrorFeedback_ResidualIsPersisted_AndCarriedAfterARestart()
    {
        var global = _reference.Flatten();
        float[] carried;
        using (var first = StartAgent())
        {
            var (sent, delta) = TrainRound(first, Task(1), FullModel(global), global);
            carried = first.UploadResidual.ToArray();
            AssertCarried(sent, carried, delta, new float[global.Length]);
        }

        Assert.True(File.Exists(_store.ResidualPath));
        Assert.True(carried.Max(MathF.Abs) > 1e-3f, "top-5 % must leave a residual worth carrying");

        using var restarted = StartAgent();
        var (sent2, delta2) = TrainRound(restarted, Task(2), FullModel(global), global);

        // Only holds when the restarted agent added the residual it saved before the restart.
        AssertCarried(sent2, restarted.UploadResidual, delta2, carried);
    }

    [Fact]
    public void ErrorFeedback_ResidualOfAnotherLayout_IsDropped()
    {
        var global = _reference.Flatten();
        var stale = new ErrorFeedback(global.Length);
        stale.Encode(DeltaCodecs.Parse("topk:ratio=0.001"), Enumerable.Repeat(0.5f, global.Length).ToArray(), new System.Buffers.ArrayBufferWriter<byte>(), new CodecRandom(1));
        _store.SaveResidual(stale);
        _store.Save(new AgentState { AgentId = "a", ModelName = "mlp", LayoutFingerprint = "0123456789abcdef" });

        using var service = StartAgent();
        var (sent, delta) = TrainRound(service, Task(1), FullModel(global), global);

        AssertCarried(sent, service.UploadResidual, delta, new float[global.Length]);
    }

    [Fact]
    public void Downlink_DeltaIsAppliedToTheModelHeldAcrossARestart_AndAWrongBaseFails()
    {
        var global1 = _reference.Flatten();
        var global2 = global1.Select((v, i) => v + 0.01f * MathF.Cos(i)).ToArray();
        var replica = global1.ToArray();
        var encoder = new DownlinkDeltaEncoder(DeltaCodecs.Parse("q8"));
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        encoder.EncodeDelta(global2, replica, writer, new CodecRandom(2));
        byte[] DeltaPayload(string baseVersion)
        {
            var payload = new Payload { LayoutFingerprint = Fingerprint, Metadata = { [CompressionKeys.BaseVersion] = baseVersion, [CompressionKeys.ModelVersion] = "run-r2" } };
            PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, writer.WrittenSpan, global1.Length);
            return payload.ToByteArray();
        }

        using (var first = StartAgent())
        {
            first.Train(Task(1, codec: null), FullModel(global1, "run-r1"), "a-t1", 4096, CancellationToken.None);
            first.Persist(new AgentState { AgentId = "a", LastRound = 1 });
            Assert.Equal("run-r1", first.DownlinkVersion);
        }

        using var restarted = StartAgent();
        var wrong = Assert.Throws<InvalidOperationException>(() => restarted.Train(Task(2, codec: null), DeltaPayload("run-r0"), "a-t2", 4096, CancellationToken.None));
        restarted.Train(Task(2, codec: null), DeltaPayload("run-r1"), "a-t2", 4096, CancellationToken.None);
        restarted.Persist(new AgentState { AgentId = "a", LastRound = 2 });

        Assert.Contains("'run-r0'", wrong.Message, StringComparison.Ordinal);
        Assert.Contains("'run-r1'", wrong.Message, StringComparison.Ordinal);
        Assert.Equal("run-r2", restarted.DownlinkVersion);
        var saved = _store.LoadDownlinkModel(Fingerprint, global1.Length);
        Assert.NotNull(saved);
        Assert.Equal("run-r2", saved.Value.Version);
        Assert.Equal(replica, saved.Value.Model); // bit for bit the coordinator's replica
    }
}
