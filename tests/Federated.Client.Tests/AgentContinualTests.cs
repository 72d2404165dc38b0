using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Learning.Continual;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

public sealed class AgentContinualTests
{
    [Theory]
    [InlineData(1, 5, 0, 0)]
    [InlineData(5, 5, 0, 0)]
    [InlineData(6, 5, 0, 1)]
    [InlineData(25, 5, 0, 4)]
    [InlineData(99, 5, 0, 4)]
    [InlineData(3, 5, 2, 0)]
    [InlineData(8, 5, 2, 1)]
    [InlineData(7, 5, 2, 0)]
    [InlineData(2, 1, 0, 1)]
    public void ExperienceSchedule_At_FollowsRoundsPerExperienceAndOffset(int round, int perExperience, int offset, int expected) =>
        Assert.Equal(expected, ExperienceSchedule.At(round, perExperience, offset, 5));

    [Fact]
    public void Options_BadValues_NameTheirKeys()
    {
        var errors = new List<string>();
        new ClientContinualOptions { Stream = "split-foo", RoundsPerExperience = 0, Methods = "ewc,online-ewc,magic", ReplayPolicy = "lru" }.AddErrors(errors);
        Assert.Contains(errors, e => e.StartsWith("Client:Continual:Stream", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:Continual:RoundsPerExperience", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("'magic'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("not both", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:Continual:ReplayPolicy", StringComparison.Ordinal));
        errors.Clear();
        new ClientContinualOptions { Stream = "split-class", Methods = "replay, ewc" }.AddErrors(errors);
        Assert.Empty(errors);
    }

    [Fact]
    public void Train_CrossesABoundary_ConsolidatesUploadsFisher_AndStateSurvivesRestart()
    {
        using var dir = new TempDirectory();
        var options = new ClientContinualOptions { Stream = "split-class", RoundsPerExperience = 1, Methods = "ewc,replay", ReplayBudget = 20, FisherSamples = 16, EwcLambda = 10 };
        int firstCount;
        float[] fisher;
        int[] replayLabels;
        using (var service = Service(dir, options))
        {
            var (task1, payload1) = Task(1, consolidate: true);
            var first = PayloadCodec.Parse(service.Train(task1, payload1, "u1", 1 << 20, CancellationToken.None).Update.Bytes, task1.LayoutFingerprint);
            firstCount = service.TrainingExamples;
            Assert.True(firstCount < service.Data.Count);
            Assert.False(PayloadCodec.ReadAllDense(first, PayloadCodec.ModelTensor).ContainsKey(FisherConsolidation.FisherKey));
            Assert.Equal(0, service.Continual!.State.Experience);

            var (task2, payload2) = Task(2, consolidate: true);
            var second = PayloadCodec.Parse(service.Train(task2, payload2, "u2", 1 << 20, CancellationToken.None).Update.Bytes, task2.LayoutFingerprint);
            var state = service.Continual.State;
            Assert.Equal(1, state.Experience);
            Assert.Single(state.EwcTerms);
            Assert.Equal(20, state.Replay!.Count);
            Assert.Equal([0, 1], state.SeenClasses);
            fisher = PayloadCodec.ReadAllDense(second, PayloadCodec.ModelTensor)[FisherConsolidation.FisherKey];
            Assert.Contains(fisher, f => f > 0);
            replayLabels = [.. state.Replay.Labels];
            service.Persist(new AgentState { AgentId = "a" });
        }

        using var restarted = Service(dir, options);
        var restored = restarted.Continual!.State;
        Assert.Equal(1, restored.Experience);
        Assert.Equal([0, 1], restored.SeenClasses);
        Assert.Equal(replayLabels, restored.Replay!.Labels);
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample([1, 28, 28], 10), torch.CPU, seed: 3);
        Assert.Equal(fisher, restarted.Continual.LatestFisher(new ModelWeights(reference).Layout));
    }

    [Fact]
    public void TrainingPlugins_WithConsolidatedTensors_UseOneServerTerm()
    {
        using var dir = new TempDirectory();
        using var service = Service(dir, new ClientContinualOptions { Stream = "split-class", Methods = "ewc" });
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample([1, 28, 28], 10), torch.CPU, seed: 3);
        var layout = new ModelWeights(reference).Layout;
        var tensors = new Dictionary<string, float[]>
        {
            [FisherConsolidation.FisherKey] = Enumerable.Repeat(2f, (int)layout.TotalLength).ToArray(),
            [FisherConsolidation.AnchorKey] = new float[layout.TotalLength],
        };
        var (plugins, scratch) = service.Continual!.TrainingPlugins(tensors, layout, () => throw new InvalidOperationException());
        using (scratch)
        {
            var ewc = Assert.Single(plugins.OfType<EwcPlugin>());
            Assert.NotNull(scratch);
            var state = Assert.IsType<ContinualState>(scratch);
            Assert.Equal(2f, Assert.Single(state.EwcTerms).Fisher.Values.First().mean().ToSingle());
            Assert.Empty(service.Continual.State.EwcTerms);
        }
    }

    private static LocalTrainingService Service(TempDirectory dir, ClientContinualOptions options)
    {
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var data = LocalDataLoader.Load(new ClientDataOptions { Source = "synthetic", SyntheticCount = 300, SyntheticClasses = 10, Clients = 1, Index = 0 }, torch.CPU);
        return new LocalTrainingService(data, ComputeContext.Cpu, store, new AgentState { AgentId = "a" }, NullLogger.Instance, TimeProvider.System, continual: options);
    }

    private static (TrainTask Task, byte[] Payload) Task(int round, bool consolidate)
    {
        using var reference = ModelFactory.Create("mlp", ModelShape.FromSample([1, 28, 28], 10), torch.CPU, seed: 3);
        var weights = new ModelWeights(reference);
        var payload = new Payload { LayoutFingerprint = weights.Layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, weights.Flatten());
        var task = new TrainTask
        {
            TaskId = $"t{round}",
            Round = round,
            ModelName = "mlp",
            LayoutFingerprint = weights.Layout.Fingerprint,
            Training = new TrainingConfig { Epochs = 1, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.05, Seed = 5 },
        };
        if (consolidate)
        {
            task.Config[FisherConsolidation.ConfigKey] = "true";
        }

        return (task, Google.Protobuf.MessageExtensions.ToByteArray(payload));
    }
}
