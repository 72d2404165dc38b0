using Federated.Learning.Continual;
using Federated.Learning.Models;
using Federated.Learning.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Continual;

public sealed class EwcPluginTests
{
    private static nn.Module<Tensor, Tensor> SmallMlp(long seed = 1)
    {
        torch.manual_seed(seed);
        return new Mlp(new ModelShape(1, 4, 4, 4), [8]);
    }

    private static Dictionary<string, Parameter> Parameters(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter);

    [Fact]
    public void Penalty_AtTheAnchor_IsZero_AndGrowsAwayFromIt()
    {
        using var data = ContinualTestData.Images(64);
        using var model = SmallMlp();
        using var state = new ContinualState();
        var plugin = new EwcPlugin(new EwcOptions { Lambda = 10, FisherSamples = 32 }, state);
        plugin.EndExperience(new ExperienceEnd(model, data, 0));

        using var scope = torch.NewDisposeScope();
        var atAnchor = EwcPlugin.Penalty(Parameters(model), state.EwcTerms).item<float>();
        var penalties = new List<float>();
        foreach (var step in new[] { 0.01, 0.1, 1.0 })
        {
            using (torch.no_grad())
            {
                foreach (var p in model.parameters())
                {
                    p.add_(torch.full_like(p, 0.01), Federated.Learning.Runtime.TorchScalars.One);
                }
            }

            penalties.Add(EwcPlugin.Penalty(Parameters(model), state.EwcTerms).item<float>());
        }

        Assert.Equal(0f, atAnchor);
        Assert.True(penalties[0] > 0 && penalties[1] > penalties[0] && penalties[2] > penalties[1], string.Join(", ", penalties));
    }

    [Fact]
    public void Penalty_IsFisherWeightedSquaredDistance()
    {
        using var model = SmallMlp();
        var names = model.named_parameters().Select(p => p.name).ToArray();
        var fisher = model.named_parameters().ToDictionary(p => p.name, p => torch.full_like(p.parameter, 2.0f).DetachFromDisposeScope());
        var anchor = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().sub(torch.full_like(p.parameter, 0.5f)).DetachFromDisposeScope());
        using var term = new EwcTerm(0, 10, fisher, anchor);

        using var scope = torch.NewDisposeScope();
        var penalty = EwcPlugin.Penalty(Parameters(model), [term]).item<float>();

        // Every weight is 0.5 from its anchor with importance 2: Σ 2 · 0.25 = 0.5 per weight.
        var count = model.parameters().Sum(p => p.numel());
        Assert.Equal(0.5 * count, penalty, 2);
        Assert.Equal(names.Length, term.Fisher.Count);
    }

    [Fact]
    public void Training_WithStrongEwc_StaysCloserToTheAnchorThanFineTuning()
    {
        using var first = ContinualTestData.Images(128, seed: 5);
        using var second = TensorDatasetRelabel.Shift(ContinualTestData.Images(128, seed: 6));
        var options = new TrainingOptions { Optimizer = OptimizerKind.Adam, LearningRate = 1e-2, BatchSize = 32, MaxSteps = 40, Seed = 1 };

        double Drift(bool ewc)
        {
            using var model = SmallMlp();
            using var state = new ContinualState();
            IContinualPlugin[] plugins = ewc ? [new EwcPlugin(new EwcOptions { Lambda = 1e4, FisherSamples = 64 }, state)] : [];
            var learner = new ContinualLearner(model, state, plugins);
            learner.Train(first, options);
            learner.EndExperience(first);
            var anchor = new Federated.Learning.Weights.ModelWeights(model).Flatten();
            learner.Train(second, options);
            var after = new Federated.Learning.Weights.ModelWeights(model).Flatten();
            return Math.Sqrt(anchor.Zip(after, (a, b) => (double)(a - b) * (a - b)).Sum());
        }

        Assert.True(Drift(ewc: true) < 0.5 * Drift(ewc: false));
    }

    [Fact]
    public void Online_FoldsFisherWithDecay_IntoOneTerm()
    {
        using var data = ContinualTestData.Images(32);
        using var model = SmallMlp();
        using var state = new ContinualState();
        var plugin = new EwcPlugin(new EwcOptions { Mode = EwcMode.Online, Gamma = 0.5, FisherSamples = 32 }, state);

        plugin.EndExperience(new ExperienceEnd(model, data, 0));
        var once = state.EwcTerms[0].Fisher["fc1.weight"].clone();
        plugin.EndExperience(new ExperienceEnd(model, data, 1));

        // Same model, same data: F = 0.5·F + F = 1.5·F.
        Assert.Single(state.EwcTerms);
        Assert.Equal(1, state.EwcTerms[0].Experience);
        Assert.True(state.EwcTerms[0].Fisher["fc1.weight"].allclose(once.mul(1.5), rtol: 1e-5, atol: 1e-8));
    }

    [Fact]
    public void Separate_KeepsOneTermPerExperience()
    {
        using var data = ContinualTestData.Images(32);
        using var model = SmallMlp();
        using var state = new ContinualState();
        var plugin = new EwcPlugin(new EwcOptions { FisherSamples = 8 }, state);

        plugin.EndExperience(new ExperienceEnd(model, data, 0));
        plugin.EndExperience(new ExperienceEnd(model, data, 1));

        Assert.Equal(new[] { 0, 1 }, state.EwcTerms.Select(t => t.Experience));
        Assert.All(state.EwcTerms, t => Assert.Equal(8, t.Samples));
    }

    [Theory]
    [InlineData(-1.0, 1.0, 10)]
    [InlineData(1.0, 0.0, 10)]
    [InlineData(1.0, 1.5, 10)]
    [InlineData(1.0, 1.0, 0)]
    public void Options_Invalid_Throw(double lambda, double gamma, int samples)
    {
        Assert.Throws<ArgumentException>(() => new EwcOptions { Lambda = lambda, Gamma = gamma, FisherSamples = samples }.Validate());
    }
}
