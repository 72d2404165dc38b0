using Federated.Learning.Data;
using Federated.Learning.Models;

namespace Federated.Learning.Training;

/// <summary>
/// Runs a few training and evaluation steps on a throw-away model so that the first real round does not pay for
/// JIT compilation, libtorch's kernel selection and allocator growth (about a second here).
/// </summary>
public static class Warmup
{
    /// <summary>Trains a small CNN (or an MLP for tiny inputs) on two batches of <paramref name="data"/> and evaluates it.</summary>
    public static void Run(TensorDataset data, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0)
        {
            return;
        }

        var shape = ModelShape.FromSample(data.SampleShape, Math.Max(2, data.NumClasses));
        var name = shape.Height >= 10 && shape.Width >= 10 ? "cnn" : "mlp";
        var count = Math.Min(data.Count, 2 * batchSize);
        using var subset = data.Subset(Enumerable.Range(0, count).ToArray());
        using var model = ModelFactory.Create(name, shape, data.Device, seed: 0);
        new LocalTrainer().Train(model, subset, new TrainingOptions { Epochs = 1, BatchSize = batchSize, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3 });
        Evaluator.Evaluate(model, subset);
    }
}
