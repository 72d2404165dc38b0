using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Learning.Continual;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

public sealed class PrecisionAndMemoryBudgetTests
{
    private const long MiB = 1024 * 1024;

    [Theory]
    [InlineData("bf16", TrainingPrecision.Bf16)]
    [InlineData("fp16", TrainingPrecision.Fp16)]
    public void Train_LowPrecision_UploadsAFloat32DeltaOfFloat32MasterWeights(string precision, TrainingPrecision expected)
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 400, Clients = 4, Index = 1, MaxExamples = 64 }, torch.CPU);
        using var service = new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState { AgentId = "a" }, NullLogger.Instance, TimeProvider.System, training: new ClientTrainingOptions { Precision = precision });
        var (task, payload, global) = Task(data.SampleShape, data.NumClasses);

        var outcome = service.Train(task, payload, "a-t1", 1 << 20, CancellationToken.None);

        Assert.Equal(expected, service.Precision);
        Assert.Equal(expected, outcome.Report.Precision);
        var update = PayloadCodec.Parse(outcome.Update.Bytes, task.LayoutFingerprint);
        var delta = PayloadCodec.ReadDense(update, PayloadCodec.ModelTensor, global.Length);
        Assert.Contains(delta, d => d != 0);
        Assert.All(delta, d => Assert.True(float.IsFinite(d)));

        // Weights kept in bf16/fp16 would all be representable in that type; float32 masters almost never are.
        var local = global.Zip(delta, (g, d) => g + d).ToArray();
        using var host = torch.tensor(local);
        using var low = host.to(expected.ScalarType());
        using var back = low.to(torch.ScalarType.Float32);
        using var representable = back.eq(host);
        using var count = representable.sum();
        Assert.True(count.item<long>() < local.Length / 10, $"{count.item<long>()} of {local.Length} uploaded weights are exactly {precision} values");
    }

    [Theory]
    [InlineData("fp8")]
    [InlineData("float64")]
    [InlineData("")]
    public void Options_UnknownPrecision_IsOneErrorNamingTheKey(string precision)
    {
        var errors = new ClientOptions { Training = new ClientTrainingOptions { Precision = precision } }.GetErrors();

        var error = Assert.Single(errors);
        Assert.Equal($"Client:Training:Precision must be fp32, bf16 or fp16, not '{precision}'.", error);
    }

    [Fact]
    public void Options_BadLossScaleSettings_NameTheirKeys()
    {
        var errors = new ClientOptions { Training = new ClientTrainingOptions { Precision = "fp16", InitialLossScale = 0, LossScaleGrowthInterval = 0 } }.GetErrors();

        Assert.Equal(2, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Client:Training:InitialLossScale ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:Training:LossScaleGrowthInterval ", StringComparison.Ordinal));
        Assert.Empty(new ClientOptions { Training = new ClientTrainingOptions { Precision = "BF16" } }.GetErrors());
    }

    [Fact]
    public void ReplayExampleBytes_AreFeaturesPlusLabelAndExperience() =>
        Assert.Equal((28 * 28 * 4) + 8, MemoryBudget.ReplayExampleBytes([1, 28, 28]));

    [Fact]
    public void SizeReplay_FitsInHalfTheBudget_KeepsTheConfiguredBudget()
    {
        var sizing = MemoryBudget.SizeReplay(8 * MiB, 1000, 3144);

        Assert.False(sizing.Clamped);
        Assert.Equal(1000, sizing.Granted);
        Assert.Equal(3_144_000, sizing.ReplayBytes);
    }

    [Fact]
    public void SizeReplay_TooLargeForHalfTheBudget_IsClampedToWhatFits()
    {
        var sizing = MemoryBudget.SizeReplay(MiB, 1000, 3144);

        Assert.True(sizing.Clamped);
        Assert.Equal((int)(MiB / 2 / 3144), sizing.Granted);
        Assert.True(sizing.ReplayBytes <= MiB / 2);
        Assert.True(sizing.ReplayBytes + 3144 > MiB / 2);
    }

    [Fact]
    public void ApplyToContinual_NotOneExampleFits_RefusesNamingTheBudget()
    {
        var continual = new ClientContinualOptions { Stream = "split-class", Methods = "replay", ReplayBudget = 10 };

        var error = Assert.Throws<InvalidOperationException>(() => MemoryBudget.ApplyToContinual(new ClientResourceOptions { MemoryBudgetMB = 1 }, continual, [3, 256, 256]));

        Assert.Contains("Client:Resources:MemoryBudgetMB", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ApplyToContinual_WithoutBudgetOrReplay_LeavesTheOptionsAlone()
    {
        var replay = new ClientContinualOptions { Stream = "split-class", Methods = "replay", ReplayBudget = 100_000 };
        var ewc = new ClientContinualOptions { Stream = "split-class", Methods = "ewc", ReplayBudget = 100_000 };

        Assert.Same(replay, MemoryBudget.ApplyToContinual(new ClientResourceOptions(), replay, [1, 28, 28]).Options);
        Assert.Same(ewc, MemoryBudget.ApplyToContinual(new ClientResourceOptions { MemoryBudgetMB = 1 }, ewc, [1, 28, 28]).Options);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(300, 0)]
    [InlineData(350, 1)]
    [InlineData(550, 2)]
    [InlineData(1200, 3)]
    public void PendingToDrop_CountsTheCaches_DroppingOldestFirst(long cacheBytes, int expected) =>
        Assert.Equal(expected, MemoryBudget.PendingToDrop(budgetBytes: 1000, cacheBytes, newBytes: 100, pendingBytes: [200, 200, 200]));

    [Fact]
    public void Continual_UnderABudget_ReplayBufferIsClampedAndCountedInTheCaches()
    {
        using var dir = new TempDirectory();
        var configured = new ClientContinualOptions { Stream = "split-class", RoundsPerExperience = 1, Methods = "ewc,replay", ReplayBudget = 1000, FisherSamples = 16 };
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 300, SyntheticClasses = 10, Clients = 1, Index = 0 }, torch.CPU);
        var (continual, sizing) = MemoryBudget.ApplyToContinual(new ClientResourceOptions { MemoryBudgetMB = 1 }, configured, data.SampleShape);
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        using var service = new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState { AgentId = "a" }, NullLogger.Instance, TimeProvider.System, continual: continual);

        for (var round = 1; round <= 2; round++)
        {
            var (task, payload, _) = Task(data.SampleShape, data.NumClasses, round);
            service.Train(task, payload, $"u{round}", 1 << 20, CancellationToken.None);
        }

        Assert.NotNull(sizing);
        Assert.Equal(166, sizing.Granted);
        Assert.Equal(1000, configured.ReplayBudget);
        var state = service.Continual!.State;
        Assert.Equal(166, state.Replay!.Budget);
        Assert.Single(state.EwcTerms);
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample(data.SampleShape, data.NumClasses), torch.CPU);
        var parameterBytes = new ModelWeights(reference).Layout.ParameterCount * sizeof(float);
        Assert.Equal(sizing.ReplayBytes + (2 * parameterBytes), service.CacheBytes());
    }

    private static (TrainTask Task, byte[] Payload, float[] Global) Task(IReadOnlyList<long> sampleShape, int classes, int round = 1)
    {
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample(sampleShape, classes), torch.CPU, seed: 3);
        var weights = new ModelWeights(reference);
        var global = weights.Flatten();
        var payload = new Payload { LayoutFingerprint = weights.Layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, global);
        var task = new TrainTask
        {
            TaskId = $"t{round}",
            Round = round,
            ModelName = "mlp",
            LayoutFingerprint = weights.Layout.Fingerprint,
            Training = new TrainingConfig { Epochs = 1, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.1, Seed = 1 },
        };
        return (task, Google.Protobuf.MessageExtensions.ToByteArray(payload), global);
    }
}
