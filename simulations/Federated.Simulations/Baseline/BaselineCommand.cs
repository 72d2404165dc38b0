using System.CommandLine;
using Federated.Learning.Runtime;
using Federated.Learning.Training;

namespace Federated.Simulations.Baseline;

/// <summary>The <c>baseline</c> command: trains one model centrally on an IDX data set.</summary>
internal static class BaselineCommand
{
    public static Command Create()
    {
        var data = new Option<DirectoryInfo>("--data")
        {
            Description = "Directory holding the IDX files (train-*/t10k-*, raw or .gz). Default: $FEDERATED_DATA or /usr/share/datasets/fashion-mnist.",
            DefaultValueFactory = _ => new DirectoryInfo(Environment.GetEnvironmentVariable("FEDERATED_DATA") ?? Learning.Data.IdxImageSource.DebianFashionMnistDirectory),
        };
        var model = new Option<string>("--model") { Description = "mlp, cnn, simple-cnn or resnet8.", DefaultValueFactory = _ => "cnn" };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training set.", DefaultValueFactory = _ => 5 };
        var batchSize = new Option<int>("--batch-size") { Description = "Training mini-batch size.", DefaultValueFactory = _ => 64 };
        var optimizer = new Option<string>("--optimizer") { Description = "sgd, adam or adamw.", DefaultValueFactory = _ => "adam" };
        var learningRate = new Option<double>("--lr") { Description = "Learning rate.", DefaultValueFactory = _ => 1e-3 };
        var momentum = new Option<double>("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => 0.0 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "Weight decay.", DefaultValueFactory = _ => 0.0 };
        var clip = new Option<double>("--clip") { Description = "Gradient L2-norm clip, 0 = off.", DefaultValueFactory = _ => 0.0 };
        var seed = new Option<long>("--seed") { Description = "Seed for initialisation and shuffling.", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "auto, cpu or cuda.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads; 0 = one per core.", DefaultValueFactory = _ => 0 };
        var limit = new Option<int>("--limit") { Description = "Use only the first N training samples (0 = all), for quick runs.", DefaultValueFactory = _ => 0 };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Write metrics.csv, summary.json and model.safetensors here." };

        var command = new Command("baseline", "Train one model centrally on an IDX data set and print per-epoch loss, accuracy and samples/s.")
        {
            data, model, epochs, batchSize, optimizer, learningRate, momentum, weightDecay, clip, seed, device, threads, limit, output,
        };
        command.SetAction((result, cancellationToken) =>
        {
            try
            {
                var settings = new BaselineSettings(
                    DataDirectory: result.GetValue(data)!.FullName,
                    Model: result.GetValue(model)!,
                    Training: new TrainingOptions
                    {
                        Epochs = result.GetValue(epochs),
                        BatchSize = result.GetValue(batchSize),
                        Optimizer = ParseOptimizer(result.GetValue(optimizer)!),
                        LearningRate = result.GetValue(learningRate),
                        Momentum = result.GetValue(momentum),
                        WeightDecay = result.GetValue(weightDecay),
                        GradientClipNorm = result.GetValue(clip),
                        Seed = result.GetValue(seed),
                    },
                    Compute: new ComputeOptions { Device = TorchRuntime.ParseDevice(result.GetValue(device)!), Threads = result.GetValue(threads) },
                    Limit: result.GetValue(limit),
                    OutputDirectory: result.GetValue(output)?.FullName);
                return Task.FromResult(BaselineRun.Execute(settings, Console.Out, cancellationToken));
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"baseline: {e.Message}");
                return Task.FromResult(2);
            }
        });
        return command;
    }

    private static OptimizerKind ParseOptimizer(string value) => value.Trim().ToLowerInvariant() switch
    {
        "sgd" => OptimizerKind.Sgd,
        "adam" => OptimizerKind.Adam,
        "adamw" => OptimizerKind.AdamW,
        _ => throw new ArgumentException($"Unknown optimizer '{value}': use sgd, adam or adamw."),
    };
}
