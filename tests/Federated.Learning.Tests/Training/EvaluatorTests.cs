using Federated.Learning.Data;
using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Training;

public sealed class EvaluatorTests
{
    /// <summary>A "model" that predicts class (first feature) for every sample.</summary>
    private sealed class FixedPredictor : nn.Module<Tensor, Tensor>
    {
        public FixedPredictor() : base(nameof(FixedPredictor)) { }

        public override Tensor forward(Tensor input) =>
            nn.functional.one_hot(input.flatten(1).select(1, 0).to(ScalarType.Int64), 3).to(ScalarType.Float32) * 10;
    }

    [Fact]
    public void Evaluate_KnownPredictions_GivesConfusionAndPerClassAccuracy()
    {
        // Predictions (first feature) vs labels: class 0 → 0,0,1; class 1 → 1; class 2 → 0,2.
        float[] features = [0, 0, 1, 1, 0, 2];
        int[] labels = [0, 0, 0, 1, 2, 2];
        using var data = TensorDataset.Materialize(new InMemorySource("t", features, labels, [1], 3), Normalization.None, torch.CPU);
        using var model = new FixedPredictor();

        var result = Evaluator.Evaluate(model, data, batchSize: 4);

        Assert.Equal([[2L, 1, 0], [0L, 1, 0], [1L, 0, 1]], result.ConfusionMatrix);
        Assert.Equal(4.0 / 6, result.Accuracy, 9);
        Assert.Equal([2.0 / 3, 1.0, 0.5], result.PerClassAccuracy);
        Assert.Equal(6, result.Samples);
    }

    [Fact]
    public void Evaluate_BatchSizeDoesNotChangeResult()
    {
        using var data = TensorDataset.Materialize(SyntheticImages.Create(100, [1, 12, 12], 3, 4), Normalization.None, torch.CPU);
        using var model = Learning.Models.ModelFactory.Create("mlp", new Learning.Models.ModelShape(1, 12, 12, 3), torch.CPU);

        var small = Evaluator.Evaluate(model, data, 7);
        var large = Evaluator.Evaluate(model, data, 256);

        Assert.Equal(small.ConfusionMatrix, large.ConfusionMatrix);
        Assert.Equal(small.Loss, large.Loss, 5);
    }
}
