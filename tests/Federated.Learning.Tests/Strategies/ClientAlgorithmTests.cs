using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Strategies;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Strategies;

public sealed class ClientAlgorithmTests
{
    // Eight samples of two features; class 1 when the features are positive. One full batch of 8.
    private static TensorDataset Data()
    {
        float[] features = [-1, -0.5f, -0.8f, -1.2f, -0.3f, -0.9f, -1.5f, -0.2f, 1, 0.5f, 0.8f, 1.2f, 0.3f, 0.9f, 1.5f, 0.2f];
        int[] labels = [0, 0, 0, 0, 1, 1, 1, 1];
        return TensorDataset.Materialize(new InMemorySource("tiny", features, labels, [1, 1, 2], 2), Normalization.None, torch.CPU);
    }

    // flatten → fc1 (2 → 2): parameters fc1.weight [2, 2] and fc1.bias [2], six floats, no buffers.
    private static Mlp Model()
    {
        torch.manual_seed(3);
        return new Mlp(new ModelShape(1, 1, 2, 2), []);
    }

    private static ClientRound RoundFor(ModelWeights weights, float[] global, TrainingOptions training,
        Dictionary<string, string>? config = null, Dictionary<string, float[]>? server = null, Dictionary<string, float[]>? local = null) => new()
        {
            Round = 1,
            Config = config ?? [],
            Global = global,
            ServerTensors = server ?? [],
            Weights = weights,
            Training = training,
            LocalState = local ?? [],
        };

    [Fact]
    public void ProximalTerm_KnownDisplacement_AddsHalfMuTimesSquaredDistance()
    {
        using var data = Data();
        using var model = Model();
        var weights = new ModelWeights(model);
        var global = weights.Flatten();
        float[] displacement = [0.1f, -0.2f, 0.3f, 0, 0.5f, -0.1f];
        var displaced = new float[global.Length];
        WeightVectors.Apply(global, displacement, displaced);
        weights.Load(displaced);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 8, LearningRate = 0.1, Shuffle = false };
        var probe = new PenaltyProbe();

        new LocalTrainer([new ProximalTerm(RoundFor(weights, global, options), mu: 0.5), probe]).Train(model, data, options);

        // ‖d‖² = 0.01 + 0.04 + 0.09 + 0 + 0.25 + 0.01 = 0.4; μ/2·‖d‖² = 0.25·0.4 = 0.1.
        Assert.Equal(0.1, probe.First!.Value, 5);
    }

    [Fact]
    public void ProximalTerm_PullsTrainedWeightsTowardsTheGlobalModel()
    {
        using var data = Data();
        using var model = Model();
        var weights = new ModelWeights(model);
        var global = weights.Flatten();
        // lr·μ stays below 2 so the proximal pull itself is stable under SGD.
        var options = new TrainingOptions { Epochs = 20, BatchSize = 4, LearningRate = 0.2, Seed = 1 };

        double DistanceAfterTraining(double mu)
        {
            weights.Load(global);
            var round = RoundFor(weights, global, options, config: new() { ["proximal_mu"] = mu.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            new LocalTrainer(ClientAlgorithms.Create(round)).Train(model, data, options);
            var delta = new float[global.Length];
            WeightVectors.Delta(weights.Flatten(), global, delta);
            return WeightVectors.L2Norm(delta);
        }

        var free = DistanceAfterTraining(0);
        var proximal = DistanceAfterTraining(1);
        var strong = DistanceAfterTraining(4);

        Assert.True(free > 0.1, $"plain training moved only {free}");
        Assert.True(proximal < free && strong < proximal, $"distances: μ=0 {free}, μ=1 {proximal}, μ=4 {strong}");
    }

    [Fact]
    public void ScaffoldCorrection_OneSgdStep_AddsControlDifferenceToTheGradient()
    {
        using var data = Data();
        using var model = Model();
        var weights = new ModelWeights(model);
        var x = weights.Flatten();
        const double Lr = 0.1;
        var options = new TrainingOptions { Epochs = 1, BatchSize = 8, LearningRate = Lr, Shuffle = false };

        // Reference run with c = cᵢ = 0 (no tensors at all): w_A = x − lr·g, so g = (x − w_A)/lr.
        var plainRound = RoundFor(weights, x, options, config: new() { ["scaffold"] = "true" });
        var plainAlgorithms = ClientAlgorithms.Create(plainRound);
        var plainReport = new LocalTrainer(plainAlgorithms).Train(model, data, options);
        Assert.Equal(1, plainReport.Steps);
        var gradient = weights.Flatten().Select((w, i) => (x[i] - w) / Lr).ToArray();
        Assert.Contains(gradient, g => Math.Abs(g) > 1e-3);

        // Corrected run: w_B = x − lr·(g + c − cᵢ).
        float[] c = [0.5f, -1, 0.25f, 2, -0.75f, 1.5f];
        float[] ci = [0.1f, 0.2f, -0.3f, 0.4f, 0, -0.5f];
        weights.Load(x);
        var local = new Dictionary<string, float[]> { [Scaffold.LocalControlKey] = ci };
        var round = RoundFor(weights, x, options, server: new() { [Scaffold.ServerControlKey] = c }, local: local);
        var correction = Assert.IsType<ScaffoldCorrection>(Assert.Single(ClientAlgorithms.Create(round)));
        var report = new LocalTrainer([correction]).Train(model, data, options);
        var corrected = weights.Flatten();

        var expected = x.Select((xi, i) => xi - (Lr * (gradient[i] + c[i] - ci[i]))).ToArray();
        StrategyTestKit.Close(expected, corrected, 1e-6);

        // Option II with K = 1: cᵢ⁺ = cᵢ − c + (x − y)/(1·lr) = cᵢ − c + (g + c − cᵢ) = g.
        var uploads = correction.Complete(round, report);
        var next = local[Scaffold.LocalControlKey];
        StrategyTestKit.Close(gradient.Select(g => (double)g).ToArray(), next, 1e-4);
        StrategyTestKit.Close(next.Select((v, i) => (double)v - ci[i]).ToArray(), uploads[Scaffold.ControlDeltaKey], 1e-6);
    }

    [Fact]
    public void ScaffoldCorrection_WithMomentum_EstimatesTheMeanGradientNotItsMomentumAmplifiedSum()
    {
        using var data = Data();
        using var model = Model();
        var weights = new ModelWeights(model);
        var x = weights.Flatten();

        // The full-batch gradient at x. A tiny learning rate keeps the weights (and so the gradient) nearly fixed.
        float[] gradient;
        using (var scope = torch.NewDisposeScope())
        {
            model.zero_grad();
            nn.functional.cross_entropy(model.call(data.Features), data.LabelTensor).backward();
            gradient = model.parameters().SelectMany(p => p.grad!.data<float>().ToArray()).ToArray();
            model.zero_grad();
        }

        var options = new TrainingOptions { Epochs = 400, BatchSize = 8, LearningRate = 1e-5, Momentum = 0.9, Shuffle = false };
        var round = RoundFor(weights, x, options, config: new() { ["scaffold"] = "true" });
        var correction = Assert.IsType<ScaffoldCorrection>(Assert.Single(ClientAlgorithms.Create(round)));
        var report = new LocalTrainer([correction]).Train(model, data, options);
        var estimate = correction.Complete(round, report)[Scaffold.ControlDeltaKey];

        // With c = cᵢ = 0, cᵢ⁺ = (x − y)/(K η/(1 − β)) ≈ g (within the momentum warm-up, ≈ 2 % at K = 400);
        // dividing by K η alone would give ≈ 10 g.
        var ratio = estimate.Zip(gradient, (e, g) => (double)e * g).Sum() / gradient.Sum(g => (double)g * g);
        Assert.InRange(ratio, 0.95, 1.02);
        Assert.Equal(0.25 / (1 - 0.5), ScaffoldCorrection.EffectiveStepSize(new TrainingOptions { LearningRate = 0.25, Momentum = 0.5 }), 12);
        Assert.Equal(0.25, ScaffoldCorrection.EffectiveStepSize(new TrainingOptions { LearningRate = 0.25, Momentum = 0.5, Optimizer = OptimizerKind.Adam }), 12);
    }

    [Fact]
    public void ScaffoldCorrection_Complete_MatchesHandComputation_AndZeroesBuffers()
    {
        using var model = new Buffered();
        var weights = new ModelWeights(model);
        var layout = weights.Layout;
        Assert.Equal(WeightKind.Buffer, layout["scale"].Kind);

        // K = 2 steps, η = 0.25 → 1/(Kη) = 2.
        // fc.weight: x = 1,  y = 0.5,   c = 0.2,  cᵢ = 0.1 → cᵢ⁺ = 0.1 − 0.2 + 2·(0.5)   = 0.9;  Δc = 0.8
        // fc.bias:   x = −1, y = −0.75, c = −0.4, cᵢ = 0.3 → cᵢ⁺ = 0.3 + 0.4 + 2·(−0.25) = 0.2;  Δc = −0.1
        // scale (buffer): x = 2, y = 3, c = cᵢ = 0 → 0 (no control variate for buffers);  Δc = 0
        float[] Vector(float weight, float bias, float scale)
        {
            var v = new float[layout.TotalLength];
            v[layout["fc.weight"].Offset] = weight;
            v[layout["fc.bias"].Offset] = bias;
            v[layout["scale"].Offset] = scale;
            return v;
        }

        var x = Vector(1, -1, 2);
        weights.Load(Vector(0.5f, -0.75f, 3));
        var local = new Dictionary<string, float[]> { [Scaffold.LocalControlKey] = Vector(0.1f, 0.3f, 0) };
        var round = RoundFor(weights, x, new TrainingOptions { LearningRate = 0.25 },
            server: new() { [Scaffold.ServerControlKey] = Vector(0.2f, -0.4f, 0) }, local: local);

        var uploads = new ScaffoldCorrection(round).Complete(round, new TrainingReport([], 2, false));

        StrategyTestKit.Close(ToDouble(Vector(0.9f, 0.2f, 0)), local[Scaffold.LocalControlKey]);
        StrategyTestKit.Close(ToDouble(Vector(0.8f, -0.1f, 0)), uploads[Scaffold.ControlDeltaKey]);
    }

    [Fact]
    public void ScaffoldCorrection_FirstRound_WithoutAnyControl_UploadsScaledDelta()
    {
        using var model = new Buffered();
        var weights = new ModelWeights(model);
        var x = weights.Flatten();
        var y = x.Select(v => v - 0.3f).ToArray();
        weights.Load(y);
        var round = RoundFor(weights, x, new TrainingOptions { LearningRate = 0.1 }, config: new() { ["scaffold"] = "true" });

        // c = cᵢ = 0: cᵢ⁺ = (x − y)/(Kη) = 0.3/(3·0.1) = 1 for parameters, 0 for the buffer.
        var uploads = new ScaffoldCorrection(round).Complete(round, new TrainingReport([], 3, false));

        var expected = weights.Layout.Entries.SelectMany(e => Enumerable.Repeat(e.Kind == WeightKind.Parameter ? 1.0 : 0.0, (int)e.Length)).ToArray();
        StrategyTestKit.Close(expected, uploads[Scaffold.ControlDeltaKey], 1e-5);
        Assert.Throws<InvalidOperationException>(() => new ScaffoldCorrection(round).Complete(round, new TrainingReport([], 0, true)));
    }

    [Fact]
    public void ScaffoldCorrection_WrongLengthControl_IsRejected()
    {
        using var model = Model();
        var weights = new ModelWeights(model);
        var round = RoundFor(weights, weights.Flatten(), new TrainingOptions(), server: new() { [Scaffold.ServerControlKey] = [1, 2] });

        Assert.Throws<ArgumentException>(() => new ScaffoldCorrection(round));
    }

    [Fact]
    public void Create_BuildsTheHalvesTheConfigurationAsksFor()
    {
        using var model = Model();
        var weights = new ModelWeights(model);
        var x = weights.Flatten();
        var options = new TrainingOptions();

        Assert.Empty(ClientAlgorithms.Create(RoundFor(weights, x, options)));
        Assert.Empty(ClientAlgorithms.Create(RoundFor(weights, x, options, config: new() { ["proximal_mu"] = "0" })));
        var prox = Assert.IsType<ProximalTerm>(Assert.Single(ClientAlgorithms.Create(RoundFor(weights, x, options, config: new() { ["proximal_mu"] = "0.01" }))));
        Assert.Equal(0.01, prox.Mu);
        Assert.IsType<ScaffoldCorrection>(Assert.Single(ClientAlgorithms.Create(RoundFor(weights, x, options, server: new() { [Scaffold.ServerControlKey] = new float[x.Length] }))));
        var both = ClientAlgorithms.Create(RoundFor(weights, x, options, config: new() { ["proximal_mu"] = "1", ["scaffold"] = "true" }));
        Assert.Collection(both, a => Assert.IsType<ProximalTerm>(a), a => Assert.IsType<ScaffoldCorrection>(a));
        Assert.Throws<ArgumentException>(() => ClientAlgorithms.Create(RoundFor(weights, x, options, config: new() { ["proximal_mu"] = "-1" })));
        Assert.Throws<ArgumentException>(() => ClientAlgorithms.Create(RoundFor(weights, x, options, config: new() { ["proximal_mu"] = "abc" })));
    }

    private static double[] ToDouble(float[] values) => values.Select(v => (double)v).ToArray();

    /// <summary>Records the penalty plug-ins added to the first batch's loss.</summary>
    private sealed class PenaltyProbe : ITrainingPlugin
    {
        public double? First { get; private set; }

        public void AfterForward(TrainingContext context)
        {
            First ??= (context.Loss! - context.DataLoss!).item<float>();
        }
    }

    /// <summary>A 1 → 1 linear layer plus a float buffer <c>scale</c> (a non-parameter weight).</summary>
    private sealed class Buffered : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> _fc;

        public Buffered() : base(nameof(Buffered))
        {
            _fc = nn.Linear(1, 1);
            register_module("fc", _fc);
            register_buffer("scale", torch.ones(1));
        }

        public override Tensor forward(Tensor input) => _fc.call(input);
    }
}
