using Federated.Learning.Continual;
using Federated.Learning.Models;
using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Continual;

public sealed class PluginBehaviourTests
{
    private static nn.Module<Tensor, Tensor> SmallMlp(long seed = 1)
    {
        torch.manual_seed(seed);
        return new Mlp(new ModelShape(1, 4, 4, 4), [8]);
    }

    [Fact]
    public void Replay_BatchesContainBufferSamples()
    {
        var sequence = Enumerable.Range(0, 30).Select(i => i % 2).ToArray();
        using var old = ContinualTestData.Labelled(sequence, 4);
        using var current = ContinualTestData.Labelled(Enumerable.Range(0, 30).Select(i => 2 + i % 2).ToArray(), 4);
        using var model = new Mlp(new ModelShape(1, 2, 2, 4), [8]);
        using var state = new ContinualState();
        using var replay = new ReplayPlugin(new ReplayOptions { Policy = ReplayPolicy.Reservoir, Budget = 10, BatchSize = 6, Seed = 1 }, state);
        var probe = new BatchProbe();
        var learner = new ContinualLearner(model, state, [replay], [probe]);
        learner.EndExperience(old);

        learner.Train(current, new TrainingOptions { BatchSize = 8, MaxSteps = 3, Seed = 2 });

        Assert.All(probe.Sizes, n => Assert.Equal(8 + 6, n));
        Assert.All(probe.Batches, labels =>
        {
            Assert.All(labels.Take(8), l => Assert.True(l >= 2));
            Assert.All(labels.Skip(8), l => Assert.True(l < 2, "replayed examples come from the first experience"));
        });
    }

    [Fact]
    public void Replay_EmptyBuffer_LeavesBatchesAlone()
    {
        using var data = ContinualTestData.Images(32);
        using var model = SmallMlp();
        using var state = new ContinualState();
        using var replay = new ReplayPlugin(new ReplayOptions { Budget = 10 }, state);
        var probe = new BatchProbe();

        new ContinualLearner(model, state, [replay], [probe]).Train(data, new TrainingOptions { BatchSize = 16, MaxSteps = 2 });

        Assert.Equal(new[] { 16, 16 }, probe.Sizes);
    }

    [Fact]
    public void Lwf_LossIsZero_WhenStudentEqualsTeacher()
    {
        using var model = SmallMlp();
        using var state = new ContinualState();
        var plugin = new LwfPlugin(new LwfOptions { Alpha = 1, Temperature = 2 }, state, () => SmallMlp(99));
        using var scope = torch.NewDisposeScope();
        var logits = torch.randn(8, 4);

        var same = plugin.Distillation(logits, logits.clone(), null).item<float>();
        var different = plugin.Distillation(logits, logits.flip(1), null).item<float>();

        Assert.Equal(0f, same, 6);
        Assert.True(different > 0.01f);
    }

    [Fact]
    public void Lwf_AfterEndExperience_TeacherMatchesTheModel_SoTheFirstBatchAddsNothing()
    {
        using var data = ContinualTestData.Images(32);
        using var model = SmallMlp();
        using var state = new ContinualState();
        var plugin = new LwfPlugin(new LwfOptions { Alpha = 5, Temperature = 2 }, state, () => SmallMlp(99));
        var learner = new ContinualLearner(model, state, [plugin], [new LossProbe()]);
        learner.EndExperience(data);

        var probe = new LossProbe();
        new LocalTrainer([plugin, probe]).Train(model, data, new TrainingOptions { BatchSize = 32, MaxSteps = 1, LearningRate = 1e-9 });

        Assert.NotNull(state.Teacher);
        Assert.Equal(probe.DataLoss[0], probe.Loss[0], 5);
    }

    [Fact]
    public void TaskHeadMask_KeepsParameterNames_AndMasksOtherTasks()
    {
        using var inner = SmallMlp();
        var names = inner.named_parameters().Select(p => p.name).ToArray();
        using var mask = new TaskHeadMask(inner, [0, 0, 1, 1]);
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(2, 1, 4, 4);

        mask.SetTargets(torch.tensor(new long[] { 1, 3 }));
        var masked = mask.call(x);
        mask.SetTargets(null);
        var raw = mask.call(x);

        Assert.Equal(names, mask.named_parameters().Select(p => p.name));
        Assert.True(masked[0, 2].item<float>() < -1e8 && masked[0, 3].item<float>() < -1e8);
        Assert.True(masked[1, 0].item<float>() < -1e8 && masked[1, 1].item<float>() < -1e8);
        Assert.Equal(raw[0, 0].item<float>(), masked[0, 0].item<float>());
        Assert.Equal(raw[1, 3].item<float>(), masked[1, 3].item<float>());
    }

    [Fact]
    public void TaskHeadMask_TaskIncrementalEvaluation_ChoosesWithinTheTask()
    {
        using var inner = SmallMlp();
        using var mask = new TaskHeadMask(inner, [0, 0, 1, 1]);
        using var data = ContinualTestData.Images(64);

        var masked = ContinualEvaluation.Accuracy(mask, data);
        var plain = ContinualEvaluation.Accuracy(inner, data);

        // Choosing among 2 instead of 4 classes can only help an untrained model on average.
        Assert.InRange(masked, 0.0, 1.0);
        Assert.True(masked >= plain - 0.05, $"{masked} vs {plain}");
    }

    [Fact]
    public void Options_Invalid_Throw()
    {
        Assert.Throws<ArgumentException>(() => new ReplayOptions { Budget = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new ReplayOptions { BatchSize = -1 }.Validate());
        Assert.Throws<ArgumentException>(() => new LwfOptions { Temperature = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new LwfOptions { Alpha = double.NaN }.Validate());
    }

    [Fact]
    public void Replay_SavedBufferOfAnotherPolicy_IsRejected()
    {
        using var state = new ContinualState { Replay = new ReservoirBuffer(10) };

        var error = Assert.Throws<ArgumentException>(() => new ReplayPlugin(new ReplayOptions { Policy = ReplayPolicy.ClassBalanced, Budget = 10 }, state));

        Assert.Contains("Reservoir", error.Message, StringComparison.Ordinal);
    }

    private sealed class BatchProbe : ITrainingPlugin
    {
        public List<int> Sizes { get; } = [];

        public List<long[]> Batches { get; } = [];

        public void AfterForward(TrainingContext context)
        {
            Sizes.Add((int)context.Inputs!.shape[0]);
            Batches.Add(context.Targets!.data<long>().ToArray());
        }
    }

    private sealed class LossProbe : ITrainingPlugin
    {
        public List<float> Loss { get; } = [];

        public List<float> DataLoss { get; } = [];

        public void AfterBackward(TrainingContext context)
        {
            Loss.Add(context.Loss!.item<float>());
            DataLoss.Add(context.DataLoss!.item<float>());
        }
    }
}
