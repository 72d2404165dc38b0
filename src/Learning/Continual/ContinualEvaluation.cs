using Federated.Learning.Data;
using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>Accuracy of a model on an experience, with a <see cref="TaskHeadMask"/>'s heads chosen from the targets.</summary>
public static class ContinualEvaluation
{
    /// <summary>Fraction of <paramref name="data"/> classified correctly; restores the model's training mode after.</summary>
    public static double Accuracy(nn.Module<Tensor, Tensor> model, TensorDataset data, int batchSize = Evaluator.DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        if (data.Count == 0)
        {
            return double.NaN;
        }

        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            long correct = 0;
            using var batches = new EpochBatches(data, batchSize, shuffle: null);
            for (var b = 0; b < batches.Count; b++)
            {
                using var scope = torch.NewDisposeScope();
                var (inputs, targets) = batches.Get(b);
                TaskHeadMask.Prepare(model, targets);
                correct += model.call(inputs).argmax(1).eq(targets).sum().item<long>();
            }

            return (double)correct / data.Count;
        }
        finally
        {
            TaskHeadMask.Prepare(model, null);
            model.train(wasTraining);
        }
    }
}
