using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Training;

public sealed class LocalTrainerTests
{
    private static TensorDataset SmallImages(int count = 256, int seed = 11) =>
        TensorDataset.Materialize(SyntheticImages.Create(count, [1, 28, 28], 4, seed), Normalization.None, torch.CPU);

    [Fact]
    public void Train_CnnOnLearnableData_LossFallsAndAccuracyRises()
    {
        using var data = SmallImages();
        using var model = ModelFactory.Create("cnn", new ModelShape(1, 28, 28, 4), torch.CPU, seed: 1);
        var before = Evaluator.Evaluate(model, data);

        var report = new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = 3, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Seed = 1 });

        var after = Evaluator.Evaluate(model, data);
        Assert.Equal(3, report.Epochs.Count);
        Assert.Equal(3 * 8, report.Steps);
        Assert.True(report.Epochs[2].Loss < report.Epochs[1].Loss && report.Epochs[1].Loss < report.Epochs[0].Loss, string.Join(" -> ", report.Epochs.Select(e => e.Loss)));
        Assert.True(after.Loss < 0.9 * before.Loss, $"eval loss {before.Loss} -> {after.Loss}");
        Assert.True(after.Accuracy > before.Accuracy, $"accuracy {before.Accuracy} -> {after.Accuracy}");
    }

    [Fact]
    public void Train_MlpOnLearnableData_ReachesHighAccuracy()
    {
        using var data = SmallImages();
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU, seed: 1);

        var report = new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = 3, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Seed = 1 });

        var after = Evaluator.Evaluate(model, data);
        Assert.True(report.FinalLoss < 0.25 * report.Epochs[0].Loss, string.Join(" -> ", report.Epochs.Select(e => e.Loss)));
        Assert.True(after.Accuracy > 0.95, $"accuracy {after.Accuracy}");
    }

    [Fact]
    public void Train_SameSeed_IsReproducible()
    {
        using var data = SmallImages(128);
        float[] Run()
        {
            using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU, seed: 5);
            new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = 2, BatchSize = 16, Optimizer = OptimizerKind.Sgd, LearningRate = 0.05, Momentum = 0.9, Seed = 9 });
            return new ModelWeights(model).Flatten();
        }

        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void Train_FiresHooksInFixedOrder()
    {
        using var data = SmallImages(40);
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU);
        var first = new RecordingPlugin("a");
        var second = new RecordingPlugin("b", first.Log);

        new LocalTrainer([first, second]).Train(model, data, new TrainingOptions { Epochs = 1, BatchSize = 32 });

        string[] batch = ["BeforeBatch", "AfterForward", "AfterBackward", "AfterStep", "AfterBatch"];
        var expected = new List<string> { "BeforeTraining", "BeforeEpoch" };
        expected.AddRange(batch);
        expected.AddRange(batch);
        expected.AddRange(["AfterEpoch", "AfterTraining"]);
        Assert.Equal(expected.SelectMany(h => new[] { $"a:{h}", $"b:{h}" }), first.Log);
    }

    [Fact]
    public void Train_PluginPenaltyInAfterForward_ChangesTheUpdate()
    {
        using var data = SmallImages(64);
        float[] Run(ITrainingPlugin? plugin)
        {
            using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU, seed: 2);
            new LocalTrainer(plugin is null ? null : [plugin]).Train(model, data, new TrainingOptions { Epochs = 1, BatchSize = 64, LearningRate = 0.1, Seed = 1 });
            return new ModelWeights(model).Flatten();
        }

        var plain = Run(null);
        var penalised = Run(new L2PenaltyPlugin(2.0));

        // A strong L2 penalty pulls every weight towards zero.
        Assert.True(WeightVectors.L2Norm(penalised) < WeightVectors.L2Norm(plain));
    }

    [Fact]
    public void Train_GradientClipping_BoundsTheStep()
    {
        using var data = SmallImages(64);
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU, seed: 2);
        var weights = new ModelWeights(model);
        var before = weights.Flatten();

        // Plain SGD with one step: |Δw| = lr × |clipped g| ≤ lr × clip.
        new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = 1, BatchSize = 64, LearningRate = 1.0, GradientClipNorm = 0.01, Seed = 1 });

        var delta = new float[before.Length];
        WeightVectors.Delta(weights.Flatten(), before, delta);
        Assert.InRange(WeightVectors.L2Norm(delta), 1e-4, 0.0100001);
    }

    [Fact]
    public void Train_Cancelled_StopsAndSaysSo()
    {
        using var data = SmallImages(64);
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        var report = new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = 3 }, cancel.Token);

        Assert.True(report.Cancelled);
        Assert.Equal(0, report.Steps);
    }

    [Fact]
    public void Train_MaxSteps_CyclesEpochsUntilExactlyThatManySteps()
    {
        using var data = SmallImages(40);
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU);

        // 40 samples in batches of 16: 3 batches per epoch, so 7 steps end one batch into the third epoch.
        var report = new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = 1, BatchSize = 16, MaxSteps = 7, Seed = 3 });

        Assert.Equal(7, report.Steps);
        Assert.Equal(3, report.Epochs.Count);
        Assert.Equal(new long[] { 40, 40, 16 }, report.Epochs.Select(e => e.Samples));
    }

    [Fact]
    public void Train_MaxSteps_ReshufflesEveryEpoch()
    {
        using var data = SmallImages(32);
        var firstBatches = new List<long[]>();
        var recorder = new FirstBatchRecorder(firstBatches);
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU);

        new LocalTrainer([recorder]).Train(model, data, new TrainingOptions { BatchSize = 32, MaxSteps = 3, Seed = 3 });

        Assert.Equal(3, firstBatches.Count);
        Assert.NotEqual(firstBatches[0], firstBatches[1]);
    }

    [Fact]
    public void Validate_NegativeMaxSteps_NamesTheField()
    {
        var error = Assert.Throws<ArgumentException>(() => new TrainingOptions { MaxSteps = -1 }.Validate());

        Assert.Contains("MaxSteps", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 64, 0.1)]
    [InlineData(1, 0, 0.1)]
    [InlineData(1, 64, -1.0)]
    public void Train_InvalidOptions_Throw(int epochs, int batchSize, double lr)
    {
        using var data = SmallImages(16);
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 4), torch.CPU);

        Assert.Throws<ArgumentException>(() => new LocalTrainer().Train(model, data, new TrainingOptions { Epochs = epochs, BatchSize = batchSize, LearningRate = lr }));
    }

    private sealed class RecordingPlugin(string name, List<string>? log = null) : ITrainingPlugin
    {
        public List<string> Log { get; } = log ?? [];

        public void BeforeTraining(TrainingContext context) => Log.Add($"{name}:BeforeTraining");

        public void BeforeEpoch(TrainingContext context) => Log.Add($"{name}:BeforeEpoch");

        public void BeforeBatch(TrainingContext context)
        {
            Assert.NotNull(context.Inputs);
            Log.Add($"{name}:BeforeBatch");
        }

        public void AfterForward(TrainingContext context)
        {
            Assert.NotNull(context.Loss);
            Log.Add($"{name}:AfterForward");
        }

        public void AfterBackward(TrainingContext context)
        {
            Assert.NotNull(context.Model.parameters().First().grad);
            Log.Add($"{name}:AfterBackward");
        }

        public void AfterStep(TrainingContext context) => Log.Add($"{name}:AfterStep");

        public void AfterBatch(TrainingContext context) => Log.Add($"{name}:AfterBatch");

        public void AfterEpoch(TrainingContext context)
        {
            Assert.NotNull(context.LastEpoch);
            Log.Add($"{name}:AfterEpoch");
        }

        public void AfterTraining(TrainingContext context) => Log.Add($"{name}:AfterTraining");
    }

    private sealed class FirstBatchRecorder(List<long[]> batches) : ITrainingPlugin
    {
        public void BeforeBatch(TrainingContext context)
        {
            if (context.BatchIndex == 0)
            {
                batches.Add(context.Targets!.data<long>().ToArray());
            }
        }
    }

    private sealed class L2PenaltyPlugin(double strength) : ITrainingPlugin
    {
        public void AfterForward(TrainingContext context)
        {
            var penalty = context.Model.parameters().Select(p => p.pow(2).sum()).Aggregate((a, b) => a + b);
            context.Loss = context.Loss! + strength * penalty;
        }
    }
}
