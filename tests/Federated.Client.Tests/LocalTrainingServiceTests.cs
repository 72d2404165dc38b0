using Federated.Client.Attacks;
using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Learning.Models;
using Federated.Learning.Privacy;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

public sealed class LocalTrainingServiceTests
{
    [Fact]
    public void TrainingConfig_MapsOntoTrainingOptions()
    {
        var options = LocalTrainingService.ToTrainingOptions(new TrainingConfig { Epochs = 2, BatchSize = 16, Optimizer = "AdamW", LearningRate = 0.003, WeightDecay = 0.01, GradientClipNorm = 1, Seed = 9 });
        Assert.Equal(2, options.Epochs);
        Assert.Equal(16, options.BatchSize);
        Assert.Equal(OptimizerKind.AdamW, options.Optimizer);
        Assert.Equal(0.003, options.LearningRate);
        Assert.Equal(9, options.Seed);
        Assert.Equal(new TrainingOptions(), LocalTrainingService.ToTrainingOptions(new TrainingConfig()));
        Assert.Throws<ArgumentException>(() => LocalTrainingService.ToTrainingOptions(new TrainingConfig { Optimizer = "lbfgs" }));
    }

    [Fact]
    public void Train_UploadsTheDelta_AndPersistsState()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 400, Clients = 4, Index = 1, MaxExamples = 64 }, torch.CPU);
        using var service = new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState { AgentId = "a" }, NullLogger.Instance, TimeProvider.System);

        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample(data.SampleShape, data.NumClasses), torch.CPU, seed: 3);
        var referenceWeights = new ModelWeights(reference);
        var global = referenceWeights.Flatten();
        var payload = new Payload { LayoutFingerprint = referenceWeights.Layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, global);
        var task = new TrainTask
        {
            TaskId = "t1",
            Round = 4,
            ModelName = "mlp",
            LayoutFingerprint = referenceWeights.Layout.Fingerprint,
            Training = new TrainingConfig { Epochs = 1, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.1, Seed = 1 },
        };

        var outcome = service.Train(task, Google.Protobuf.MessageExtensions.ToByteArray(payload), "a-t1", 4096, CancellationToken.None);
        Assert.Equal(4, outcome.Report.Steps);
        Assert.True(outcome.Update.ChunkCount > 1);
        var update = PayloadCodec.Parse(outcome.Update.Bytes, referenceWeights.Layout.Fingerprint);
        var delta = PayloadCodec.ReadDense(update, PayloadCodec.ModelTensor, referenceWeights.Layout.TotalLength);
        Assert.Contains(delta, d => d != 0);
        Assert.Equal("a-t1", outcome.Update.TransferId);

        service.Persist(new AgentState { AgentId = "a", LastRound = 4, LastTaskId = "t1" });
        var state = store.Load();
        Assert.Equal(4, state.LastRound);
        Assert.Equal("mlp", state.ModelName);
        Assert.Equal(referenceWeights.Layout.Fingerprint, state.LayoutFingerprint);
        Assert.True(File.Exists(store.ModelPath));

        var evaluation = service.Evaluate(new EvaluateTask { TaskId = "e1", Round = 4, ModelName = "mlp", LayoutFingerprint = referenceWeights.Layout.Fingerprint },
            Google.Protobuf.MessageExtensions.ToByteArray(payload));
        Assert.Equal(64, evaluation.Samples);
    }

    [Fact]
    public void Train_TaskCarriesClipBound_ClipsTheDeltaBeforeUpload_AndReportsIt()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 400, Clients = 4, Index = 2, MaxExamples = 64 }, torch.CPU);
        using var service = new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState { AgentId = "a" }, NullLogger.Instance, TimeProvider.System);
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample(data.SampleShape, data.NumClasses), torch.CPU, seed: 5);
        var referenceWeights = new ModelWeights(reference);
        var fingerprint = referenceWeights.Layout.Fingerprint;
        var payload = new Payload { LayoutFingerprint = fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, referenceWeights.Flatten());
        var bytes = Google.Protobuf.MessageExtensions.ToByteArray(payload);
        (float[] Delta, IReadOnlyDictionary<string, double> Metrics) Train(string? bound)
        {
            var task = new TrainTask
            {
                TaskId = "t",
                Round = 1,
                ModelName = "mlp",
                LayoutFingerprint = fingerprint,
                Training = new TrainingConfig { Epochs = 1, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.1, Seed = 1 },
            };
            if (bound is not null)
            {
                task.Config[AgentClipping.BoundKey] = bound;
            }

            var outcome = service.Train(task, bytes, "a-t", 1 << 20, CancellationToken.None);
            var update = PayloadCodec.Parse(outcome.Update.Bytes, fingerprint);
            return (PayloadCodec.ReadDense(update, PayloadCodec.ModelTensor, referenceWeights.Layout.TotalLength), outcome.Metrics);
        }

        var (free, freeMetrics) = Train(null);
        var norm = L2Clipping.Norm(free);
        var bound = norm / 2;
        var (clipped, clippedMetrics) = Train(bound.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        var (loose, looseMetrics) = Train((norm * 10).ToString("R", System.Globalization.CultureInfo.InvariantCulture));

        Assert.Empty(freeMetrics);
        Assert.InRange(L2Clipping.Norm(clipped), bound * (1 - 1e-5), bound);
        var cosine = free.Zip(clipped, (a, b) => (double)a * b).Sum() / (norm * L2Clipping.Norm(clipped));
        Assert.True(cosine > 0.999, $"the clipped delta changed direction (cosine {cosine})");
        Assert.Equal(1, clippedMetrics[AgentClipping.ClippedMetric]);
        Assert.Equal(0, looseMetrics[AgentClipping.ClippedMetric]);
        Assert.Equal(norm, L2Clipping.Norm(loose), 3);
        Assert.Throws<FormatException>(() => Train("-1"));
    }

    [Fact]
    public void FingerprintMismatch_FailsWithAClearError()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 40 }, torch.CPU);
        using var service = new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState(), NullLogger.Instance, TimeProvider.System);
        var payload = new Payload { LayoutFingerprint = "feedface" };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, new float[10]);
        var task = new TrainTask { TaskId = "t", Round = 1, ModelName = "mlp", LayoutFingerprint = "feedface" };
        var e = Assert.Throws<InvalidOperationException>(() => service.Train(task, Google.Protobuf.MessageExtensions.ToByteArray(payload), "x", 4096, CancellationToken.None));
        Assert.Contains("feedface", e.Message, StringComparison.Ordinal);
    }

    private static LocalTrainingService Service(TempDirectory dir, string name, AttackStage? attack = null)
    {
        var store = new AgentStateStore(Path.Combine(dir.Path, name), NullLogger<AgentStateStore>.Instance);
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 400, SyntheticClasses = 4, Clients = 4, Index = 1, MaxExamples = 48 }, torch.CPU);
        return new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState { AgentId = name }, NullLogger.Instance, TimeProvider.System, attack);
    }

    private static (TrainTask Task, byte[] Payload) Task(int round)
    {
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample([1, 28, 28], 4), torch.CPU, seed: 3);
        var weights = new ModelWeights(reference);
        var payload = new Payload { LayoutFingerprint = weights.Layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, weights.Flatten());
        var task = new TrainTask
        {
            TaskId = $"t{round}",
            Round = round,
            ModelName = "mlp",
            LayoutFingerprint = weights.Layout.Fingerprint,
            Training = new TrainingConfig { Epochs = 1, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.1, Seed = 5 },
        };
        return (task, Google.Protobuf.MessageExtensions.ToByteArray(payload));
    }

    [Fact]
    public void LabelFlip_TrainsOnLabelsCMinusOneMinusYFromTheStartRound()
    {
        using var dir = new TempDirectory();
        using var honest = Service(dir, "honest");
        using var flipper = Service(dir, "flipper", new AttackStage(new ClientAttackOptions { Kind = "labelflip", StartRound = 2 }, "flipper"));

        Assert.Same(flipper.Data, flipper.TrainingData(1));
        var poisoned = flipper.TrainingData(2);
        Assert.NotSame(flipper.Data, poisoned);
        Assert.Equal(flipper.Data.Labels.ToArray().Select(y => 3 - y), poisoned.Labels.ToArray());
        Assert.Equal(poisoned.Labels.ToArray().Select(y => (long)y), poisoned.LabelTensor.data<long>().ToArray());
        Assert.Equal(flipper.Data.Features.data<float>().ToArray(), poisoned.Features.data<float>().ToArray());

        // Round 1 trains on the true labels (the same delta as an honest agent's), round 2 on the flipped ones.
        var (first, firstPayload) = Task(1);
        Assert.Equal(honest.TrainLocal(first, firstPayload, CancellationToken.None).Delta, flipper.TrainLocal(first, firstPayload, CancellationToken.None).Delta);
        var (second, secondPayload) = Task(2);
        Assert.NotEqual(honest.TrainLocal(second, secondPayload, CancellationToken.None).Delta, flipper.TrainLocal(second, secondPayload, CancellationToken.None).Delta);
    }

    [Fact]
    public void EstimatedVariant_AddsBootstrapRunsAndKeepsTheMainRunsDelta()
    {
        using var dir = new TempDirectory();
        using var honest = Service(dir, "honest");
        var options = new ClientAttackOptions { Kind = "ipm", Variant = "estimated", EstimateRuns = 3 };
        using var attacker = Service(dir, "attacker", new AttackStage(options, "attacker"));
        var (task, payload) = Task(1);

        var plain = honest.TrainLocal(task, payload, CancellationToken.None);
        var local = attacker.TrainLocal(task, payload, CancellationToken.None);

        Assert.Empty(plain.Estimates);
        Assert.Equal(plain.Delta, local.Delta);
        Assert.Equal(3, local.Estimates.Count);
        Assert.All(local.Estimates, e => Assert.Equal(plain.Delta.Length, e.Length));
        Assert.All(local.Estimates, e => Assert.NotEqual(plain.Delta, e));
        Assert.NotEqual(local.Estimates[0], local.Estimates[1]);
        Assert.NotEqual(local.Estimates[1], local.Estimates[2]);

        // The bootstrap runs share the main run's scale: each within a factor 3 of its norm.
        var norm = WeightVectors.L2Norm(plain.Delta);
        Assert.All(local.Estimates, e => Assert.InRange(WeightVectors.L2Norm(e), norm / 3, norm * 3));
    }
}
