using System.Globalization;
using System.Text;
using System.Text.Json;
using Federated.Learning.Checkpoints;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;

namespace Federated.Simulations.Baseline;

/// <summary>Settings of one centralised baseline run.</summary>
internal sealed record BaselineSettings(
    string DataDirectory,
    string Model,
    TrainingOptions Training,
    ComputeOptions Compute,
    int Limit,
    string? OutputDirectory);

/// <summary>Trains one model on the whole training split, evaluating on the test split after every epoch.</summary>
internal static class BaselineRun
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Execute(BaselineSettings settings, TextWriter console, CancellationToken cancellationToken)
    {
        settings.Training.Validate();
        if (settings.Limit < 0)
        {
            throw new ArgumentException("--limit must be 0 (all samples) or positive.");
        }

        var compute = TorchRuntime.Initialize(settings.Compute);
        console.WriteLine($"federated baseline: {compute.Description}");

        var trainSource = IdxImageSource.LoadSplit(settings.DataDirectory, "train");
        var testSource = IdxImageSource.LoadSplit(settings.DataDirectory, "test");
        var classes = Math.Max(trainSource.NumClasses, testSource.NumClasses);
        var normalization = Normalization.Estimate(trainSource);
        using var fullTrain = TensorDataset.Materialize(trainSource, normalization, compute.Device, classes);
        using var limited = settings.Limit > 0 && settings.Limit < fullTrain.Count
            ? fullTrain.Subset(Enumerable.Range(0, settings.Limit).ToArray())
            : null;
        var train = limited ?? fullTrain;
        using var test = TensorDataset.Materialize(testSource, normalization, compute.Device, classes);

        var shape = ModelShape.FromSample(train.SampleShape, classes);
        using var model = ModelFactory.Create(settings.Model, shape, compute.Device, settings.Training.Seed);
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"data {trainSource.Name}: {train.Count} train / {test.Count} test samples, {classes} classes; model {settings.Model}: {ModelFactory.CountParameters(model):N0} parameters; " +
            $"{settings.Training.Optimizer} lr {settings.Training.LearningRate} batch {settings.Training.BatchSize}"));
        console.WriteLine("epoch  train_loss  train_acc  test_loss  test_acc  samples/s  seconds");

        var rows = new List<EpochRow>();
        var reporter = new EpochReporter(model, test, rows, console);
        var report = new LocalTrainer([reporter]).Train(model, train, settings.Training, cancellationToken);
        if (report.Cancelled)
        {
            console.WriteLine("cancelled");
            return 130;
        }

        if (settings.OutputDirectory is { } outDir)
        {
            Directory.CreateDirectory(outDir);
            WriteMetrics(Path.Combine(outDir, "metrics.csv"), rows);
            File.WriteAllText(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(new
            {
                model = settings.Model,
                data = settings.DataDirectory,
                device = compute.Description,
                settings.Training,
                final = rows[^1],
            }, JsonOptions));
            ModelCheckpoint.Save(Path.Combine(outDir, "model.safetensors"), new ModelWeights(model), new Dictionary<string, string> { ["model"] = settings.Model });
            console.WriteLine($"wrote {outDir}/metrics.csv, summary.json, model.safetensors");
        }

        return 0;
    }

    private static void WriteMetrics(string path, IEnumerable<EpochRow> rows)
    {
        var text = new StringBuilder("epoch,train_loss,train_acc,test_loss,test_acc,samples_per_second,seconds\n");
        foreach (var r in rows)
        {
            text.Append(CultureInfo.InvariantCulture, $"{r.Epoch},{r.TrainLoss:F5},{r.TrainAccuracy:F5},{r.TestLoss:F5},{r.TestAccuracy:F5},{r.SamplesPerSecond:F1},{r.Seconds:F2}\n");
        }

        File.WriteAllText(path, text.ToString());
    }

    internal sealed record EpochRow(int Epoch, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy, double SamplesPerSecond, double Seconds);

    /// <summary>Evaluates on the test split after each epoch (outside the epoch's timed batches).</summary>
    private sealed class EpochReporter(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> model, TensorDataset test, List<EpochRow> rows, TextWriter console) : ITrainingPlugin
    {
        public void AfterEpoch(TrainingContext context)
        {
            var epoch = context.LastEpoch!;
            var eval = Evaluator.Evaluate(model, test);
            var row = new EpochRow(epoch.Epoch, epoch.Loss, epoch.Accuracy, eval.Loss, eval.Accuracy, epoch.SamplesPerSecond, epoch.Seconds);
            rows.Add(row);
            console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.Epoch,5}  {row.TrainLoss,10:F4}  {row.TrainAccuracy,9:P2}  {row.TestLoss,9:F4}  {row.TestAccuracy,8:P2}  {row.SamplesPerSecond,9:F0}  {row.Seconds,7:F1}"));
        }
    }
}
