using Federated.Learning.Continual;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Training;

public sealed class MixedPrecisionTests
{
    private static readonly ModelShape Shape = new(1, 28, 28, 4);

    private static TensorDataset SmallImages(int count = 256, int seed = 11) =>
        TensorDataset.Materialize(SyntheticImages.Create(count, [1, 28, 28], 4, seed), Normalization.None, torch.CPU);

    private static Func<nn.Module<Tensor, Tensor>> Factory(string name) => () => ModelFactory.Create(name, Shape, torch.CPU, seed: 77);

    /// <summary>The models' common starting weights, made once per model name: two models made from one seed can differ
    /// when a test on another thread draws from torch's global generator while one of them initialises.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, float[]> Initial = new(StringComparer.Ordinal);

    private static (TrainingReport Report, EvaluationResult After, float[] Weights) Run(string name, TensorDataset data, TrainingOptions options, params ITrainingPlugin[] plugins)
    {
        using var model = ModelFactory.Create(name, Shape, torch.CPU, seed: 1);
        new ModelWeights(model).Load(Initial.GetOrAdd(name, _ => new ModelWeights(model).Flatten()));
        var report = new LocalTrainer(plugins, createModel: Factory(name)).Train(model, data, options);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        return (report, Evaluator.Evaluate(model, data), new ModelWeights(model).Flatten());
    }

    [Theory]
    [InlineData("mlp", TrainingPrecision.Bf16)]
    [InlineData("mlp", TrainingPrecision.Fp16)]
    [InlineData("cnn", TrainingPrecision.Bf16)]
    [InlineData("cnn", TrainingPrecision.Fp16)]
    public void Train_LowPrecision_LossFallsAndLandsNearFp32(string name, TrainingPrecision precision)
    {
        // The CNN is slow in fp16 on a CPU: it gets half the data.
        using var data = SmallImages(name == "cnn" ? 128 : 256);
        var options = new TrainingOptions { Epochs = 3, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Seed = 1 };
        var fp32 = Run(name, data, options);

        var low = Run(name, data, options with { Precision = precision });

        var losses = string.Join(" -> ", low.Report.Epochs.Select(e => e.Loss.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(precision, low.Report.Precision);
        Assert.True(low.Report.Epochs[2].Loss < low.Report.Epochs[1].Loss && low.Report.Epochs[1].Loss < low.Report.Epochs[0].Loss, $"{precision}: {losses}");
        Assert.True(name != "mlp" || low.Report.FinalLoss < 0.5 * low.Report.Epochs[0].Loss, $"{precision}: {losses}");
        Assert.True(Math.Abs(low.After.Loss - fp32.After.Loss) < 0.05 + (0.25 * fp32.After.Loss), $"{precision} eval loss {low.After.Loss} vs fp32 {fp32.After.Loss}");
        // The CNN is still early in training after three short epochs, where accuracy moves fast: a wider margin.
        Assert.True(Math.Abs(low.After.Accuracy - fp32.After.Accuracy) <= (name == "mlp" ? 0.05 : 0.12), $"{precision} accuracy {low.After.Accuracy} vs fp32 {fp32.After.Accuracy}");
        Assert.Equal(0, low.Report.SkippedSteps);
    }

    [Fact]
    public void Train_Bf16_MasterWeightsStayFloat32AndKeepUpdatesBf16WouldRoundAway()
    {
        using var data = SmallImages(64);
        using var model = ModelFactory.Create("mlp", Shape, torch.CPU, seed: 1);
        var weights = new ModelWeights(model);
        var before = weights.Flatten();

        new LocalTrainer(createModel: Factory("mlp")).Train(model, data, new TrainingOptions { BatchSize = 32, MaxSteps = 2, LearningRate = 1e-5, Seed = 1, Precision = TrainingPrecision.Bf16 });

        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        var after = weights.Flatten();
        var delta = new float[after.Length];
        WeightVectors.Delta(after, before, delta);
        var moved = Enumerable.Range(0, delta.Length).Where(i => delta[i] != 0).ToArray();
        Assert.True(moved.Length > delta.Length / 2, $"{moved.Length} of {delta.Length} weights moved");

        // Weights held in bf16 could not have taken these steps: most would round back to where they were.
        using var start = torch.tensor(moved.Select(i => before[i]).ToArray());
        using var end = torch.tensor(moved.Select(i => after[i]).ToArray());
        using var startBf16 = start.to(ScalarType.BFloat16);
        using var endBf16 = end.to(ScalarType.BFloat16);
        using var same = startBf16.eq(endBf16);
        using var sameCount = same.sum();
        var lost = sameCount.item<long>();
        Assert.True(lost > moved.Length / 2, $"only {lost} of {moved.Length} updates are below bf16's resolution");
    }

    [Fact]
    public void Train_Fp16_OverflowingStepIsSkippedAndHalvesTheScale()
    {
        using var data = SmallImages(128);
        using var model = ModelFactory.Create("mlp", Shape, torch.CPU, seed: 1);
        var probe = new OverflowProbe(new ModelWeights(model), overflowAtStep: 2);

        var report = new LocalTrainer([probe], createModel: Factory("mlp")).Train(model, data, new TrainingOptions
        {
            BatchSize = 16,
            MaxSteps = 5,
            LearningRate = 0.05,
            Seed = 1,
            Precision = TrainingPrecision.Fp16,
            InitialLossScale = 1024,
            LossScaleGrowthInterval = 1000,
        });

        Assert.Equal(5, report.Steps);
        Assert.Equal(1, report.SkippedSteps);
        Assert.Equal(512, report.LossScale);
        Assert.Equal(new double?[] { 1024, 1024, 1024, 512, 512 }, probe.ScalesBefore);
        Assert.Equal(new[] { true, true, false, true, true }, probe.Moved);
        Assert.Equal(new long[] { 0, 1, 3, 4 }, probe.AfterBackwardSteps);
        Assert.All(new ModelWeights(model).Flatten(), w => Assert.True(float.IsFinite(w)));
    }

    [Fact]
    public void Train_Fp16_ScaleDoublesAfterEachGrowthIntervalOfGoodSteps()
    {
        using var data = SmallImages(128);

        var report = Run("mlp", data, new TrainingOptions
        {
            BatchSize = 16,
            MaxSteps = 7,
            LearningRate = 0.01,
            Seed = 1,
            Precision = TrainingPrecision.Fp16,
            InitialLossScale = 256,
            LossScaleGrowthInterval = 3,
        }).Report;

        Assert.Equal(0, report.SkippedSteps);
        Assert.Equal(1024, report.LossScale);
    }

    [Fact]
    public void LossScaler_HalvesOnOverflow_GrowsAfterIntervalAndRestartsTheCount()
    {
        var scaler = new DynamicLossScaler(initialScale: 8, growthInterval: 2);

        Assert.True(scaler.Update(true));
        Assert.Equal(8, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.Equal(16, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.False(scaler.Update(false));
        Assert.Equal(8, scaler.Scale);
        Assert.Equal(0, scaler.GoodSteps);
        Assert.True(scaler.Update(true));
        Assert.Equal(8, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.Equal(16, scaler.Scale);
        Assert.Equal(1, scaler.SkippedSteps);
    }

    [Theory]
    [InlineData(TrainingPrecision.Bf16)]
    [InlineData(TrainingPrecision.Fp16)]
    public void Train_LowPrecision_EwcPenaltyStillHoldsTheWeightsNearTheAnchor(TrainingPrecision precision)
    {
        using var data = SmallImages(128);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 32, LearningRate = 0.05, Seed = 1, Precision = precision };
        double DistanceFromStart(double lambda)
        {
            using var model = ModelFactory.Create("mlp", Shape, torch.CPU, seed: 1);
            var start = new ModelWeights(model).Flatten();
            using var state = new ContinualState();
            var fisher = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var anchor = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (parameterName, parameter) in model.named_parameters())
            {
                fisher[parameterName] = torch.ones_like(parameter).DetachFromDisposeScope();
                anchor[parameterName] = parameter.detach().clone().DetachFromDisposeScope();
            }

            state.AddEwcTerm(new EwcTerm(0, data.Count, fisher, anchor));
            var ewc = new EwcPlugin(new EwcOptions { Lambda = lambda }, state);
            var lwf = new LwfPlugin(new LwfOptions { Alpha = 1, Temperature = 2 }, state, Factory("mlp"));
            state.SetTeacher(anchor.ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope(), StringComparer.Ordinal));
            var report = new LocalTrainer([ewc, lwf], createModel: Factory("mlp")).Train(model, data, options);
            Assert.True(double.IsFinite(report.FinalLoss));
            var end = new ModelWeights(model).Flatten();
            return Math.Sqrt(start.Zip(end, (a, b) => (double)(a - b) * (a - b)).Sum());
        }

        var free = DistanceFromStart(0);
        var held = DistanceFromStart(5);

        Assert.True(held < 0.5 * free, $"{precision}: moved {held} with EWC, {free} without");
    }

    [Fact]
    public void Train_LowPrecisionWithoutModelFactory_FailsClearly()
    {
        using var data = SmallImages(32);
        using var model = ModelFactory.Create("mlp", Shape, torch.CPU, seed: 1);

        var error = Assert.Throws<ArgumentException>(() => new LocalTrainer().Train(model, data, new TrainingOptions { Precision = TrainingPrecision.Bf16 }));

        Assert.Contains("model factory", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fp32", TrainingPrecision.Fp32)]
    [InlineData(" BF16 ", TrainingPrecision.Bf16)]
    [InlineData("bfloat16", TrainingPrecision.Bf16)]
    [InlineData("fp16", TrainingPrecision.Fp16)]
    [InlineData("half", TrainingPrecision.Fp16)]
    public void Precision_Parse_AcceptsTheNames(string text, TrainingPrecision expected) =>
        Assert.Equal(expected, TrainingPrecisions.Parse(text));

    [Theory]
    [InlineData("fp8")]
    [InlineData("")]
    [InlineData(null)]
    public void Precision_Parse_RejectsOthersNamingTheChoices(string? text)
    {
        var error = Assert.Throws<ArgumentException>(() => TrainingPrecisions.Parse(text));

        Assert.Contains("fp32, bf16 or fp16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_Validate_RejectsUnknownPrecisionAndBadScale()
    {
        Assert.Contains("Precision", Assert.Throws<ArgumentException>(() => new TrainingOptions { Precision = (TrainingPrecision)7 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("InitialLossScale", Assert.Throws<ArgumentException>(() => new TrainingOptions { InitialLossScale = 0.5 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("LossScaleGrowthInterval", Assert.Throws<ArgumentException>(() => new TrainingOptions { LossScaleGrowthInterval = 0 }.Validate()).Message, StringComparison.Ordinal);
    }

    private sealed class OverflowProbe(ModelWeights weights, long overflowAtStep) : ITrainingPlugin
    {
        private float[]? _before;

        public List<double?> ScalesBefore { get; } = [];

        public List<bool> Moved { get; } = [];

        public List<long> AfterBackwardSteps { get; } = [];

        public void BeforeBatch(TrainingContext context)
        {
            _before = weights.Flatten();
            ScalesBefore.Add(context.LossScale);
        }

        public void AfterForward(TrainingContext context)
        {
            if (context.Step == overflowAtStep)
            {
                using var infinity = float.PositiveInfinity.ToScalar();
                context.Loss = context.Loss!.mul(infinity);
            }
        }

        public void AfterBackward(TrainingContext context) => AfterBackwardSteps.Add(context.Step);

        public void AfterBatch(TrainingContext context) => Moved.Add(!weights.Flatten().SequenceEqual(_before!));
    }
}
