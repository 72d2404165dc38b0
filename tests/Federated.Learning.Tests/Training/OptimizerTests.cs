using Federated.Learning.Models;
using Federated.Learning.Training;
using Federated.Learning.Training.Optimizers;
using Federated.Learning.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Training;

/// <summary>Our optimisers follow PyTorch's update rules: checked step by step against TorchSharp's ports of them.</summary>
public sealed class OptimizerTests
{
    private static (float[] Ours, float[] Reference) Run(Func<IEnumerable<TorchSharp.Modules.Parameter>, LocalOptimizer> ours, Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> reference, int steps = 5)
    {
        using var a = ModelFactory.Create("mlp", new ModelShape(1, 6, 6, 3), torch.CPU, seed: 4);
        using var b = ModelFactory.Create("mlp", new ModelShape(1, 6, 6, 3), torch.CPU, seed: 4);

        // The same starting point by copy, not by seed: another test drawing from torch's global generator on another
        // thread while a model initialises would otherwise give the two models different weights (seen in CI).
        new ModelWeights(b).Load(new ModelWeights(a).Flatten());
        using var optA = ours(a.parameters());
        using var optB = reference(b.parameters());
        var generator = new torch.Generator(11);
        for (var i = 0; i < steps; i++)
        {
            using var scope = torch.NewDisposeScope();
            var x = torch.randn([8, 1, 6, 6], generator: generator);
            var y = torch.randint(0, 3, [8], generator: generator);
            optA.ZeroGrad();
            nn.functional.cross_entropy(a.call(x), y).backward();
            optA.Step();
            optB.zero_grad();
            nn.functional.cross_entropy(b.call(x), y).backward();
            optB.step();
        }

        return (new ModelWeights(a).Flatten(), new ModelWeights(b).Flatten());
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        // Adam divides by sqrt(v): where a gradient is nearly zero, last-bit differences in it grow, so the bound is
        // absolute and small against the learning rate (0.01 per step), not relative.
        var worst = expected.Zip(actual, (e, x) => Math.Abs(e - x)).Max();
        Assert.True(worst < 2e-5, $"largest difference {worst}");
    }

    [Theory]
    [InlineData(0.0, 0.0, false)]
    [InlineData(0.9, 0.0, false)]
    [InlineData(0.9, 0.01, false)]
    [InlineData(0.9, 0.01, true)]
    public void Sgd_MatchesPyTorchRule(double momentum, double weightDecay, bool nesterov)
    {
        var (ours, reference) = Run(p => new SgdOptimizer(p, 0.1, momentum, weightDecay, nesterov), p => optim.SGD(p, 0.1, momentum, 0, weightDecay, nesterov));

        AssertClose(reference, ours);
    }

    [Theory]
    [InlineData(0.0, false)]
    [InlineData(0.01, false)]
    [InlineData(0.01, true)]
    public void Adam_MatchesPyTorchRule(double weightDecay, bool decoupled)
    {
        var (ours, reference) = Run(
            p => new AdamOptimizer(p, 0.01, 0.9, 0.999, 1e-8, weightDecay, decoupled),
            p => decoupled ? optim.AdamW(p, 0.01, 0.9, 0.999, 1e-8, weightDecay) : optim.Adam(p, 0.01, 0.9, 0.999, 1e-8, weightDecay));

        AssertClose(reference, ours);
    }

    [Fact]
    public void Step_ActuallyMovesTheWeights()
    {
        var (ours, _) = Run(p => new SgdOptimizer(p, 0.1), p => optim.SGD(p, 0.1), steps: 0);
        var (moved, _) = Run(p => new SgdOptimizer(p, 0.1), p => optim.SGD(p, 0.1), steps: 1);

        Assert.NotEqual(ours, moved);
    }

    [Fact]
    public void ClipGradientNorm_ScalesToTheLimit()
    {
        using var model = ModelFactory.Create("mlp", new ModelShape(1, 6, 6, 3), torch.CPU);
        var parameters = model.parameters().ToArray();
        nn.functional.cross_entropy(model.call(torch.randn(4, 1, 6, 6) * 100), torch.tensor(new long[] { 0, 1, 2, 0 })).backward();

        var before = LocalTrainer.ClipGradientNorm(parameters, 1e9);
        LocalTrainer.ClipGradientNorm(parameters, 0.5);
        var after = LocalTrainer.ClipGradientNorm(parameters, 1e9);

        Assert.True(before > 0.5, $"the test needs a gradient norm above the limit, got {before}");
        Assert.Equal(0.5, after, 3);
    }
}
