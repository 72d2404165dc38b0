using Federated.Learning.Continual;
using Federated.Learning.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Continual;

public sealed class FisherEstimatorTests
{
    [Fact]
    public void Estimate_TinyLinearModel_MatchesHandComputedSquaredGradients()
    {
        // A 2-input, 2-class linear model: logits z = W x + b. For one sample, ∂(−log p_y)/∂W = (p − e_y) xᵀ and
        // ∂/∂b = p − e_y; the empirical Fisher is the mean over samples of their squares.
        using var model = new TinyLinear();
        float[,] w = { { 0.5f, -1.0f }, { 0.25f, 2.0f } };
        float[] b = { 0.1f, -0.2f };
        model.Set(w, b);
        float[][] xs = [[1f, 2f], [-1f, 0.5f], [3f, -2f]];
        int[] ys = [0, 1, 1];
        using var data = TensorDataset.Materialize(
            new InMemorySource("tiny", xs.SelectMany(x => x).ToArray(), ys, [1, 1, 2], 2), Normalization.None, torch.CPU);

        var fisher = FisherEstimator.Estimate(model, data, maxSamples: 10);

        var expectedW = new double[2, 2];
        var expectedB = new double[2];
        for (var n = 0; n < xs.Length; n++)
        {
            var z = new double[2];
            for (var c = 0; c < 2; c++)
            {
                z[c] = b[c] + w[c, 0] * xs[n][0] + w[c, 1] * xs[n][1];
            }

            var max = Math.Max(z[0], z[1]);
            var e = z.Select(v => Math.Exp(v - max)).ToArray();
            for (var c = 0; c < 2; c++)
            {
                var g = e[c] / e.Sum() - (ys[n] == c ? 1 : 0);
                expectedB[c] += g * g / xs.Length;
                for (var i = 0; i < 2; i++)
                {
                    expectedW[c, i] += g * xs[n][i] * (g * xs[n][i]) / xs.Length;
                }
            }
        }

        try
        {
            var actualW = fisher["linear.weight"].data<float>().ToArray();
            var actualB = fisher["linear.bias"].data<float>().ToArray();
            for (var c = 0; c < 2; c++)
            {
                Assert.Equal(expectedB[c], actualB[c], 5);
                for (var i = 0; i < 2; i++)
                {
                    Assert.Equal(expectedW[c, i], actualW[c * 2 + i], 5);
                }
            }
        }
        finally
        {
            foreach (var t in fisher.Values)
            {
                t.Dispose();
            }
        }
    }

    [Fact]
    public void Estimate_MaxSamples_UsesThatManySamples()
    {
        using var model = new TinyLinear();
        model.Set(new float[,] { { 1f, 0f }, { 0f, 1f } }, [0f, 0f]);
        using var data = TensorDataset.Materialize(new InMemorySource("tiny", [1f, 0f, 0f, 1f, 5f, 5f], [0, 1, 0], [1, 1, 2], 2), Normalization.None, torch.CPU);

        var one = FisherEstimator.Estimate(model, data, maxSamples: 1, seed: 1);
        var all = FisherEstimator.Estimate(model, data, maxSamples: 3, seed: 1);

        Assert.False(one["linear.bias"].allclose(all["linear.bias"]));
        Assert.True(model.parameters().All(p => p.grad is null || p.grad.abs().sum().item<float>() == 0), "gradients are left zeroed");
    }

    internal sealed class TinyLinear : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear _linear;

        public TinyLinear() : base(nameof(TinyLinear))
        {
            _linear = nn.Linear(2, 2);
            register_module("linear", _linear);
        }

        public void Set(float[,] w, float[] b)
        {
            using var noGrad = torch.no_grad();
            _linear.weight!.copy_(torch.tensor(w));
            _linear.bias!.copy_(torch.tensor(b));
        }

        public override Tensor forward(Tensor input) => _linear.call(input.flatten(1));
    }
}
