using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using TorchSharp;

namespace Federated.Benchmarks;

/// <summary>
/// <c>federated-bench precision</c>: local-training throughput of the reference scenario's models (the 2NN MLP and the
/// Fashion-MNIST CNN, Adam 1e-3, batch 64) in fp32, bf16 and fp16 through the real <see cref="LocalTrainer"/>, median
/// of the repeats after a warm-up, with the mean training loss of the last pass of each precision's last run.
/// </summary>
internal static class PrecisionBenchmark
{
    private const int BatchSize = 64;
    private const int Examples = 3000;

    public static int Run(string[] args)
    {
        var settings = BenchSettings.Parse(args);
        if (settings is null)
        {
            return 2;
        }

        var compute = TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Auto, Threads = settings.Threads });
        var report = new StringBuilder();
        void Say(string line)
        {
            Console.WriteLine(line);
            report.AppendLine(line);
        }

        ILabelledSource source = Directory.Exists(settings.DataDirectory)
            ? IdxImageSource.LoadSplit(settings.DataDirectory, "train")
            : SyntheticImages.Create(Examples, [1, 28, 28], 10, seed: 1);
        using var all = TensorDataset.Materialize(source, Normalization.FashionMnist, compute.Device);
        using var data = all.Subset(Enumerable.Range(0, Math.Min(Examples, all.Count)).ToArray());
        Say("# Mixed-precision training throughput");
        Say("");
        Say(Inv($"- {compute.Description}, {torch.get_num_threads()} libtorch thread(s); {Environment.ProcessorCount} logical cores, {RuntimeInformation.ProcessArchitecture}, .NET {Environment.Version}, {RuntimeInformation.OSDescription}"));
        Say($"- CPU: {CpuSummary()}");
        Say(Inv($"- data: {(Directory.Exists(settings.DataDirectory) ? settings.DataDirectory : "synthetic")}, first {data.Count:N0} training examples; Adam 1e-3, batch {BatchSize}; LocalTrainer with MaxSteps; median of {settings.Repeats} runs after a warm-up"));
        Say("");
        Say("| model | precision | steps per run | runs (samples/s) | median samples/s | vs fp32 | last-pass loss |");
        Say("|---|---|---:|---|---:|---:|---:|");
        foreach (var (name, steps) in new[] { ("mlp", 150), ("cnn", 30) })
        {
            double? fp32 = null;
            foreach (var precision in new[] { TrainingPrecision.Fp32, TrainingPrecision.Bf16, TrainingPrecision.Fp16 })
            {
                var options = new TrainingOptions { BatchSize = BatchSize, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Seed = 1, Precision = precision };
                Train(name, data, options with { MaxSteps = 3 }, compute);
                var runs = new List<double>();
                var loss = double.NaN;
                for (var r = 0; r < settings.Repeats; r++)
                {
                    var (samplesPerSecond, finalLoss) = Train(name, data, options with { MaxSteps = steps, Seed = r }, compute);
                    runs.Add(samplesPerSecond);
                    loss = finalLoss;
                }

                var median = Median(runs);
                fp32 ??= median;
                Say(Inv($"| {name} | {precision.Name()} | {steps} | {string.Join(", ", runs.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))} | {median:F0} | {median / fp32.Value:F2}× | {loss:F3} |"));
            }
        }

        Say("");
        Say($"Command: `dotnet run -c Release --project benchmarks/Federated.Benchmarks -- {string.Join(' ', ["precision", .. args])}`");
        if (settings.Output is { } path)
        {
            File.WriteAllText(path, report.ToString());
            Console.WriteLine($"wrote {path}");
        }

        return 0;
    }

    private static (double SamplesPerSecond, double Loss) Train(string name, TensorDataset data, TrainingOptions options, ComputeContext compute)
    {
        var shape = ModelShape.FromSample(data.SampleShape, data.NumClasses);
        using var model = ModelFactory.Create(name, shape, compute.Device, seed: 1);
        var trainer = new LocalTrainer(createModel: () => ModelFactory.Create(name, shape, compute.Device, seed: 1));
        var watch = Stopwatch.StartNew();
        var report = trainer.Train(model, data, options);
        var seconds = watch.Elapsed.TotalSeconds;
        return (report.Samples / seconds, report.FinalLoss);
    }

    // What decides bf16/fp16 speed on a CPU: native bf16 dot products (AVX-512 BF16, AMX) and fp16 arithmetic (AVX-512 FP16).
    private static string CpuSummary()
    {
        const string CpuInfo = "/proc/cpuinfo";
        if (!File.Exists(CpuInfo))
        {
            return "(no /proc/cpuinfo)";
        }

        var lines = File.ReadLines(CpuInfo).Take(64).ToList();
        var model = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var flags = (lines.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1] ?? string.Empty)
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        return $"{model}; avx512_bf16 {(flags.Contains("avx512_bf16") ? "yes" : "no")}, amx_bf16 {(flags.Contains("amx_bf16") ? "yes" : "no")}, avx512_fp16 {(flags.Contains("avx512_fp16") ? "yes" : "no")}";
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
