using System.Diagnostics;
using System.Globalization;
using System.Text;
using Federated.Benchmarks;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using static TorchSharp.torch;

NativeRuntime.TuneProcess();

// Usage: federated-bench [--data DIR] [--threads N] [--repeats N] [--out FILE]
//        federated-bench robust [--n N] [--d D] [--repeats N] [--out FILE]
//        federated-bench codecs [--repeats N] [--out FILE]   (delta codec throughput, CodecBenchmark.cs)
//        federated-bench secagg [--n N,N] [--d D,D] [--repeats N] [--out FILE]   (SecAgg+ costs, SecAggBenchmark.cs)
//        federated-bench continual --scenario S --method M [...] | --grid [...]   (continual learning, ContinualRunner.cs)
//        federated-bench precision [--threads N] [--repeats N] [--out FILE]   (fp32 / bf16 / fp16 training, PrecisionBenchmark.cs)
if (args is ["robust", .. var robustArgs])
{
    return RobustBenchmark.Run(robustArgs);
}

if (args is ["codecs", .. var codecArgs])
{
    return CodecBenchmark.Run(codecArgs);
}

if (args is ["secagg", .. var secaggArgs])
{
    return SecAggBenchmark.Run(secaggArgs);
}

if (args is ["precision", .. var precisionArgs])
{
    return PrecisionBenchmark.Run(precisionArgs);
}

if (args is ["continual", .. var continualArgs])
{
    return ContinualRunner.Run(continualArgs);
}

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

Say($"# Foundation benchmarks");
Say("");
Say($"- {compute.Description}");
Say($"- {Environment.ProcessorCount} logical cores, .NET {Environment.Version}, {RuntimeInformationText()}");

ILabelledSource source;
if (Directory.Exists(settings.DataDirectory))
{
    source = IdxImageSource.LoadSplit(settings.DataDirectory, "train");
    Say($"- data: {settings.DataDirectory} (train split, {source.Count} samples)");
}
else
{
    source = SyntheticImages.Create(60_000, [1, 28, 28], 10, seed: 1);
    Say($"- data: synthetic 60,000 × 28×28 ({settings.DataDirectory} not found)");
}

using var data = TensorDataset.Materialize(source, Normalization.FashionMnist, compute.Device);
const int BatchSize = 64;
var options = new TrainingOptions { Epochs = 1, BatchSize = BatchSize, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Seed = 1 };

// --- 1. Training throughput: raw step on pre-built batches vs the training loop over a full epoch ---
Say("");
Say("## Training throughput (225k CNN, Adam 1e-3, batch 64, one full epoch per run)");
Say("");
var prebuilt = PrebuildBatches(data, BatchSize);
var raw = new List<double>();
var loop = new List<double>();
using (var model = ModelFactory.Create("cnn", ModelShape.Mnist, compute.Device, seed: 1))
{
    RawSteps(model, prebuilt, 50); // warm-up
    new LocalTrainer().Train(model, data.Subset(Enumerable.Range(0, 64 * 50).ToArray()), options);
    for (var r = 0; r < settings.Repeats; r++)
    {
        raw.Add(RawSteps(model, prebuilt, prebuilt.Count));
        loop.Add(new LocalTrainer().Train(model, data, options with { Seed = r }).Epochs[0].SamplesPerSecond);
    }
}

foreach (var (x, y) in prebuilt)
{
    x.Dispose();
    y.Dispose();
}

var rawMedian = Median(raw);
var loopMedian = Median(loop);
Say("| measurement | runs (samples/s) | median samples/s | ms per batch |");
Say("|---|---|---:|---:|");
Say(Inv($"| raw forward+backward+step on pre-built tensors | {string.Join(", ", raw.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))} | {rawMedian:F0} | {1000.0 * BatchSize / rawMedian:F2} |"));
Say(Inv($"| LocalTrainer epoch (shuffle, batching, metrics, hooks) | {string.Join(", ", loop.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))} | {loopMedian:F0} | {1000.0 * BatchSize / loopMedian:F2} |"));
Say("");
Say(Inv($"Loop / raw = **{100 * loopMedian / rawMedian:F1} %** (target ≥ 85 %)."));

// --- 2. Weight vectors ---
Say("");
Say("## Weight vectors: flatten into a preallocated vector + load back");
Say("");
Say("| model | floats | median flatten+load (ms) | p90 (ms) | median delta (ms) | target |");
Say("|---|---:|---:|---:|---:|---|");
using (var cnn = ModelFactory.Create("cnn", ModelShape.Mnist, compute.Device))
{
    Say(VectorRow("225k CNN", cnn, 2000, "≤ 1 ms"));
}

using (var big = new Mlp(ModelShape.Mnist, [3000, 2600]).to(compute.Device))
{
    Say(VectorRow("10M MLP (784-3000-2600-10)", big, 50, "≤ 20 ms"));
}

// --- 3. Evaluation batch size (the allocation trap) ---
Say("");
Say("## Evaluation throughput by batch size (225k CNN, 10,000 samples)");
Say("");
Say("| eval batch | median samples/s |");
Say("|---:|---:|");
using (var model = ModelFactory.Create("cnn", ModelShape.Mnist, compute.Device))
using (var evalData = data.Subset(Enumerable.Range(0, 10_000).ToArray()))
{
    foreach (var batch in new[] { 256, 1000 })
    {
        Evaluator.Evaluate(model, evalData, batch);
        var runs = Enumerable.Range(0, settings.Repeats).Select(_ =>
        {
            var sw = Stopwatch.StartNew();
            Evaluator.Evaluate(model, evalData, batch);
            return evalData.Count / sw.Elapsed.TotalSeconds;
        }).ToList();
        Say(Inv($"| {batch} | {Median(runs):F0} |"));
    }
}

Say("");
Say($"Command: `dotnet run -c Release --project benchmarks/Federated.Benchmarks -- {string.Join(' ', args)}`".Replace(" -- `", "`", StringComparison.Ordinal));
if (settings.Output is { } path)
{
    File.WriteAllText(path, report.ToString());
    Console.WriteLine($"wrote {path}");
}

return 0;

static List<(Tensor X, Tensor Y)> PrebuildBatches(TensorDataset data, int batchSize)
{
    var result = new List<(Tensor, Tensor)>();
    using var generator = new torch.Generator(7);
    using var batches = new EpochBatches(data, batchSize, generator);
    for (var b = 0; b < batches.Count; b++)
    {
        using var scope = torch.NewDisposeScope();
        var (x, y) = batches.Get(b);
        result.Add((x.clone().DetachFromDisposeScope(), y.clone().DetachFromDisposeScope()));
    }

    return result;
}

// The irreducible work: zero_grad, forward, loss, backward, step, on tensors that already exist.
static double RawSteps(nn.Module<Tensor, Tensor> model, List<(Tensor X, Tensor Y)> batches, int count)
{
    model.train();
    using var optimizer = new Federated.Learning.Training.Optimizers.AdamOptimizer(model.parameters(), 1e-3);
    long samples = 0;
    var sw = Stopwatch.StartNew();
    for (var i = 0; i < count; i++)
    {
        using var scope = torch.NewDisposeScope();
        var (x, y) = batches[i % batches.Count];
        optimizer.ZeroGrad();
        var loss = nn.functional.cross_entropy(model.call(x), y);
        loss.backward();
        optimizer.Step();
        samples += x.shape[0];
    }

    return samples / sw.Elapsed.TotalSeconds;
}

static string VectorRow(string name, nn.Module model, int iterations, string target)
{
    var weights = new ModelWeights(model);
    var vector = new float[weights.Layout.TotalLength];
    var other = weights.Flatten();
    var delta = new float[vector.Length];
    var roundTrip = new List<double>(iterations);
    var deltas = new List<double>(iterations);
    for (var i = 0; i < iterations + 10; i++)
    {
        var t0 = Stopwatch.GetTimestamp();
        weights.FlattenInto(vector);
        weights.Load(vector);
        var t1 = Stopwatch.GetTimestamp();
        WeightVectors.Delta(vector, other, delta);
        var t2 = Stopwatch.GetTimestamp();
        if (i >= 10)
        {
            roundTrip.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
            deltas.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
        }
    }

    roundTrip.Sort();
    return Inv($"| {name} | {vector.Length:N0} | {Median(roundTrip):F3} | {roundTrip[(int)(0.9 * roundTrip.Count)]:F3} | {Median(deltas):F3} | {target} |");
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

static string RuntimeInformationText() =>
    $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}, TorchSharp {typeof(torch).Assembly.GetName().Version}";
