using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Federated.Learning.Continual;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Benchmarks;

/// <summary>
/// <c>federated-bench continual</c>: centralised continual learning on Split or Permuted Fashion-MNIST (van de Ven &amp;
/// Tolias' protocol: MLP 2×400, Adam 1e-3, batch 128, a fixed number of iterations per experience). One run prints and
/// writes the accuracy matrix and its summaries; <c>--grid</c> runs methods × scenarios and writes a markdown table and
/// JSON; <c>--tune</c> picks EWC's λ (or LwF's α) on the validation split before the test run.
/// </summary>
internal static class ContinualRunner
{
    private const string Usage =
        "Usage: federated-bench continual --scenario S --method M [--iterations N] [--batch N] [--lr X] [--seed N] [--out DIR]\n" +
        "         [--lambda X] [--gamma X] [--fisher-samples N] [--budget N] [--policy reservoir|class-balanced|experience-balanced]\n" +
        "         [--replay-batch N] [--alpha X] [--temperature X] [--experiences N] [--drift-steps N] [--hidden N,N] [--validation X]\n" +
        "         [--tune [--grid-values X,X,...] [--tune-iterations N]] [--data DIR] [--threads N]\n" +
        "       federated-bench continual --grid [--scenarios S,S] [--methods M,M] [same options] --out DIR\n" +
        "Scenarios: split-task, split-domain, split-class, permuted, drift.  Methods: finetune, ewc, online-ewc, lwf, replay, replay+ewc, joint.";

    private static readonly string[] Scenarios = ["split-task", "split-domain", "split-class", "permuted", "drift"];
    private static readonly string[] Methods = ["finetune", "ewc", "online-ewc", "lwf", "replay", "replay+ewc", "joint"];
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static int Run(string[] args)
    {
        Settings settings;
        try
        {
            settings = Settings.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"federated-bench continual: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (settings.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }

        if (!Directory.Exists(settings.Data))
        {
            Console.Error.WriteLine($"federated-bench continual: Fashion-MNIST directory '{settings.Data}' does not exist; pass --data DIR or set FEDERATED_DATA.");
            return 2;
        }

        TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Cpu, Threads = settings.Threads });
        var (train, test) = ExperienceSequences.LoadFashionMnist(settings.Data, torch.CPU);
        using (train)
        using (test)
        {
            var command = "dotnet run -c Release --project benchmarks/Federated.Benchmarks -- continual " + string.Join(' ', args);
            if (settings.Grid)
            {
                return RunGrid(settings, train, test, command);
            }

            var result = RunOne(settings, settings.Scenario!, settings.Method!, train, test);
            if (settings.Out is { } dir)
            {
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, "result.json"), JsonSerializer.Serialize(result with { Command = command }, Json));
                Console.WriteLine($"wrote {Path.Combine(dir, "result.json")}");
            }

            return 0;
        }
    }

    private static int RunGrid(Settings settings, TensorDataset train, TensorDataset test, string command)
    {
        var results = new List<RunResult>();
        var outDir = settings.Out ?? "runs/continual-grid";
        Directory.CreateDirectory(outDir);
        foreach (var scenario in settings.GridScenarios)
        {
            foreach (var method in settings.GridMethods)
            {
                var runSettings = settings with { Out = Path.Combine(outDir, $"{scenario}_{method}") };
                var result = RunOne(runSettings, scenario, method, train, test);
                results.Add(result);
                Directory.CreateDirectory(runSettings.Out!);
                File.WriteAllText(Path.Combine(runSettings.Out!, "result.json"), JsonSerializer.Serialize(result, Json));
                File.WriteAllText(Path.Combine(outDir, "grid.json"), JsonSerializer.Serialize(new { command, results }, Json));
                File.WriteAllText(Path.Combine(outDir, "grid.md"), Table(settings, results, command));
            }
        }

        Console.WriteLine(Table(settings, results, command));
        Console.WriteLine($"wrote {Path.Combine(outDir, "grid.md")} and grid.json");
        return 0;
    }

    private static string Table(Settings settings, List<RunResult> results, string command)
    {
        var scenarios = settings.GridScenarios.Where(s => results.Any(r => r.Scenario == s)).ToArray();
        var text = new StringBuilder();
        text.AppendLine(Inv($"Average test accuracy (%) after the last experience; seed {settings.Seed}, {settings.Iterations} iterations per experience, batch {settings.Batch}, Adam {settings.LearningRate}, MLP {string.Join('×', settings.Hidden)}."));
        text.AppendLine();
        text.AppendLine("| method | " + string.Join(" | ", scenarios) + " |");
        text.AppendLine("|---|" + string.Concat(scenarios.Select(_ => "---:|")));
        foreach (var method in settings.GridMethods)
        {
            var cells = scenarios.Select(s => results.FirstOrDefault(r => r.Scenario == s && r.Method == method) is { } r ? Inv($"{100 * r.AverageAccuracy:F2}") : "–");
            text.AppendLine($"| {method} | {string.Join(" | ", cells)} |");
        }

        text.AppendLine();
        text.AppendLine("| scenario | method | avg acc % | forgetting | BWT | FWT | hyper-parameters | seconds |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---|---:|");
        foreach (var r in results)
        {
            text.AppendLine(Inv($"| {r.Scenario} | {r.Method} | {100 * r.AverageAccuracy:F2} | {100 * r.Forgetting:F2} | {100 * r.BackwardTransfer:F2} | {100 * r.ForwardTransfer:F2} | {r.HyperParameters} | {r.Seconds:F0} |"));
        }

        text.AppendLine();
        text.AppendLine($"Command: `{command}`");
        return text.ToString();
    }

    private static RunResult RunOne(Settings settings, string scenario, string method, TensorDataset train, TensorDataset test)
    {
        var tuned = new List<TuneResult>();
        if (settings.Tune && TunedParameter(method) is { } parameter)
        {
            var values = settings.GridValues ?? (parameter == "alpha" ? [0.1, 0.5, 1, 2, 5] : [1, 10, 100, 1_000, 10_000, 100_000]);
            foreach (var value in values)
            {
                var trial = Apply(settings, parameter, value) with { Iterations = settings.TuneIterations ?? settings.Iterations };
                var outcome = Execute(trial, scenario, method, train, test, validation: true, label: Inv($"tune {parameter}={value}"));
                tuned.Add(new TuneResult(value, outcome.AverageAccuracy));
            }

            var best = tuned.MaxBy(t => t.ValidationAccuracy)!;
            Console.WriteLine(Inv($"{scenario} {method}: {parameter} = {best.Value} (validation average accuracy {100 * best.ValidationAccuracy:F2} %)"));
            settings = Apply(settings, parameter, best.Value);
        }

        var result = Execute(settings, scenario, method, train, test, validation: false, label: "test");
        return result with { Tuning = tuned.Count > 0 ? tuned : null };
    }

    private static string? TunedParameter(string method) =>
        method.Contains("ewc", StringComparison.Ordinal) ? "lambda" : method == "lwf" ? "alpha" : null;

    private static Settings Apply(Settings settings, string parameter, double value) =>
        parameter == "alpha" ? settings with { Alpha = value } : settings with { Lambda = value };

    private static RunResult Execute(Settings settings, string scenario, string method, TensorDataset train, TensorDataset test, bool validation, string label)
    {
        if (method == "joint" && scenario is "permuted" or "drift")
        {
            throw new ArgumentException("joint (training on the union so far) is implemented for the split scenarios only: ten permuted copies of the training set do not fit the memory budget.");
        }

        var clock = Stopwatch.StartNew();
        using var stream = CreateStream(settings, scenario, train, test);
        var shape = ModelShape.FromSample(train.SampleShape, stream.NumClasses);
        nn.Module<Tensor, Tensor> CreateMlp()
        {
            torch.manual_seed(settings.Seed);
            return new Mlp(shape, settings.Hidden);
        }

        var inner = CreateMlp();
        using var model = stream.ClassToTask is { } tasks ? new TaskHeadMask(inner, tasks) : inner;
        using var state = new ContinualState();
        var components = method.Split('+');
        var plugins = new List<IContinualPlugin>();
        var hyper = new List<string>();
        foreach (var component in components)
        {
            switch (component)
            {
                case "finetune" or "joint":
                    break;
                case "replay":
                    plugins.Add(new ReplayPlugin(new ReplayOptions { Policy = settings.Policy, Budget = settings.Budget, BatchSize = settings.ReplayBatch, Seed = settings.Seed }, state));
                    hyper.Add(Inv($"{PolicyName(settings.Policy)} budget {settings.Budget}"));
                    break;
                case "ewc" or "online-ewc":
                    var online = component == "online-ewc";
                    plugins.Add(new EwcPlugin(new EwcOptions { Lambda = settings.Lambda, Mode = online ? EwcMode.Online : EwcMode.Separate, Gamma = settings.Gamma, FisherSamples = settings.FisherSamples, Seed = settings.Seed }, state));
                    hyper.Add(online ? Inv($"λ {settings.Lambda}, γ {settings.Gamma}") : Inv($"λ {settings.Lambda}"));
                    break;
                case "lwf":
                    plugins.Add(new LwfPlugin(new LwfOptions { Alpha = settings.Alpha, Temperature = settings.Temperature }, state, CreateMlp));
                    hyper.Add(Inv($"α {settings.Alpha}, T {settings.Temperature}"));
                    break;
                default:
                    throw new ArgumentException($"Unknown method component '{component}'.");
            }
        }

        var learner = new ContinualLearner(model, state, plugins);
        var options = new TrainingOptions
        {
            Optimizer = OptimizerKind.Adam,
            LearningRate = settings.LearningRate,
            BatchSize = settings.Batch,
            MaxSteps = settings.Iterations,
        };

        var count = stream.Count;
        var matrix = new AccuracyMatrix(count);
        var opened = new List<ExperienceData>();
        try
        {
            TensorDataset Evaluation(int j) => validation ? opened[j].Validation : stream.Test(j);

            // b_j (for FWT): the untrained model on every experience; validation sets are opened as the stream reaches them.
            for (var j = 0; j < count; j++)
            {
                matrix.Baseline[j] = validation ? double.NaN : ContinualEvaluation.Accuracy(model, stream.Test(j));
            }

            for (var k = 0; k < count; k++)
            {
                var experience = stream.Open(k);
                opened.Add(experience);
                var started = clock.Elapsed;
                TrainingReport report;
                if (method == "joint")
                {
                    using var union = TensorDataset.Concatenate(opened.Select(e => e.Train).ToList(), $"joint/0-{k}");
                    report = learner.Train(union, options with { Seed = settings.Seed * 100 + k });
                }
                else
                {
                    report = learner.Train(experience.Train, options with { Seed = settings.Seed * 100 + k });
                }

                learner.EndExperience(experience.Train);

                for (var j = 0; j < count; j++)
                {
                    if (validation && j > k)
                    {
                        continue;
                    }

                    matrix[k, j] = ContinualEvaluation.Accuracy(model, Evaluation(j));
                }

                if (!validation && settings.Out is { } dir)
                {
                    state.Save(Path.Combine(dir, "state"));
                }

                if (scenario == "permuted" || scenario == "drift")
                {
                    // Keep only what evaluation needs: permuted training sets are 170 MB each.
                    experience.Train.Dispose();
                }

                Console.WriteLine(Inv($"[{scenario} {method} {label}] experience {k}: {report.Steps} steps, final loss {report.FinalLoss:F4}, {(clock.Elapsed - started).TotalSeconds:F1} s; accuracy {string.Join(' ', Enumerable.Range(0, k + 1).Select(j => (100 * matrix[k, j]).ToString("F1", CultureInfo.InvariantCulture)))}; average {100 * matrix.AverageAccuracy(k):F2} %"));
            }
        }
        finally
        {
            foreach (var experience in opened)
            {
                experience.Dispose();
            }
        }

        var result = new RunResult(
            scenario,
            method,
            settings.Seed,
            settings.Iterations,
            string.Join("; ", hyper.DefaultIfEmpty("–")),
            matrix.AverageAccuracy(),
            validation ? double.NaN : matrix.Forgetting(),
            validation ? double.NaN : matrix.BackwardTransfer(),
            validation ? double.NaN : matrix.ForwardTransfer(),
            matrix.Rows(),
            matrix.Baseline,
            clock.Elapsed.TotalSeconds,
            null,
            null);
        Console.WriteLine(Inv($"[{scenario} {method} {label}] average accuracy {100 * result.AverageAccuracy:F2} %, forgetting {100 * result.Forgetting:F2}, BWT {100 * result.BackwardTransfer:F2}, FWT {100 * result.ForwardTransfer:F2}, {result.Seconds:F0} s"));
        return result;
    }

    private static IExperienceSequence CreateStream(Settings settings, string scenario, TensorDataset train, TensorDataset test) => scenario switch
    {
        "split-task" => new SplitExperiences(train, test, IncrementalScenario.Task, 2, settings.Validation, settings.Seed),
        "split-domain" => new SplitExperiences(train, test, IncrementalScenario.Domain, 2, settings.Validation, settings.Seed),
        "split-class" => new SplitExperiences(train, test, IncrementalScenario.Class, 2, settings.Validation, settings.Seed),
        "permuted" => new PermutedExperiences(train, test, settings.Experiences, settings.Validation, settings.Seed),
        "drift" => ContinualStreams.Owning(new PermutedExperiences(train, test, settings.Experiences, settings.Validation, settings.Seed), settings.DriftSteps, settings.Seed),
        _ => throw new ArgumentException($"Unknown scenario '{scenario}'."),
    };

    private static string PolicyName(ReplayPolicy policy) => policy switch
    {
        ReplayPolicy.Reservoir => "reservoir",
        ReplayPolicy.ClassBalanced => "class-balanced",
        _ => "experience-balanced",
    };

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed record TuneResult(double Value, double ValidationAccuracy);

    private sealed record RunResult(
        string Scenario,
        string Method,
        int Seed,
        int Iterations,
        string HyperParameters,
        double AverageAccuracy,
        double Forgetting,
        double BackwardTransfer,
        double ForwardTransfer,
        double[][] Matrix,
        double[] Baseline,
        double Seconds,
        List<TuneResult>? Tuning,
        string? Command);

    private sealed record Settings
    {
        public string Data { get; init; } = Environment.GetEnvironmentVariable("FEDERATED_DATA") ?? IdxImageSource.DebianFashionMnistDirectory;
        public string? Scenario { get; init; }
        public string? Method { get; init; }
        public bool Grid { get; init; }
        public bool Help { get; init; }
        public string[] GridScenarios { get; init; } = ["split-task", "split-domain", "split-class"];
        public string[] GridMethods { get; init; } = Methods;
        public int Iterations { get; init; } = 2000;
        public int Batch { get; init; } = 128;
        public double LearningRate { get; init; } = 1e-3;
        public int Seed { get; init; } = 1;
        public string? Out { get; init; }
        public double Lambda { get; init; } = 1000;
        public double Gamma { get; init; } = 1.0;
        public int FisherSamples { get; init; } = 1000;
        public int Budget { get; init; } = 1000;
        public ReplayPolicy Policy { get; init; } = ReplayPolicy.ClassBalanced;
        public int ReplayBatch { get; init; }
        public double Alpha { get; init; } = 1.0;
        public double Temperature { get; init; } = 2.0;
        public int Experiences { get; init; } = 10;
        public int DriftSteps { get; init; } = 10;
        public int[] Hidden { get; init; } = [400, 400];
        public double Validation { get; init; } = 0.1;
        public bool Tune { get; init; }
        public double[]? GridValues { get; init; }
        public int? TuneIterations { get; init; }
        public int Threads { get; init; }

        public static Settings Parse(string[] args)
        {
            var s = new Settings();
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                s = args[i] switch
                {
                    "--help" or "-h" => s with { Help = true },
                    "--data" => s with { Data = Next() },
                    "--scenario" => s with { Scenario = OneOf(Next(), Scenarios, "--scenario") },
                    "--method" => s with { Method = OneOf(Next(), Methods, "--method") },
                    "--grid" => s with { Grid = true },
                    "--scenarios" => s with { GridScenarios = Next().Split(',').Select(v => OneOf(v, Scenarios, "--scenarios")).ToArray() },
                    "--methods" => s with { GridMethods = Next().Split(',').Select(v => OneOf(v, Methods, "--methods")).ToArray() },
                    "--iterations" => s with { Iterations = Int(Next(), "--iterations", 1) },
                    "--batch" => s with { Batch = Int(Next(), "--batch", 1) },
                    "--lr" => s with { LearningRate = Real(Next(), "--lr", positive: true) },
                    "--seed" => s with { Seed = Int(Next(), "--seed", 0) },
                    "--out" => s with { Out = Next() },
                    "--lambda" => s with { Lambda = Real(Next(), "--lambda", positive: false) },
                    "--gamma" => s with { Gamma = Real(Next(), "--gamma", positive: true) },
                    "--fisher-samples" => s with { FisherSamples = Int(Next(), "--fisher-samples", 1) },
                    "--budget" => s with { Budget = Int(Next(), "--budget", 1) },
                    "--policy" => s with { Policy = Next() switch
                    {
                        "reservoir" => ReplayPolicy.Reservoir,
                        "class-balanced" => ReplayPolicy.ClassBalanced,
                        "experience-balanced" => ReplayPolicy.ExperienceBalanced,
                        var v => throw new ArgumentException($"--policy takes reservoir, class-balanced or experience-balanced, not '{v}'."),
                    } },
                    "--replay-batch" => s with { ReplayBatch = Int(Next(), "--replay-batch", 0) },
                    "--alpha" => s with { Alpha = Real(Next(), "--alpha", positive: false) },
                    "--temperature" => s with { Temperature = Real(Next(), "--temperature", positive: true) },
                    "--experiences" => s with { Experiences = Int(Next(), "--experiences", 2) },
                    "--drift-steps" => s with { DriftSteps = Int(Next(), "--drift-steps", 2) },
                    "--hidden" => s with { Hidden = Next().Split(',').Select(v => Int(v, "--hidden", 1)).ToArray() },
                    "--validation" => s with { Validation = Real(Next(), "--validation", positive: true) is var v and < 1 ? v : throw new ArgumentException("--validation takes a fraction in (0, 1).") },
                    "--tune" => s with { Tune = true },
                    "--grid-values" => s with { GridValues = Next().Split(',').Select(v => Real(v, "--grid-values", positive: false)).ToArray() },
                    "--tune-iterations" => s with { TuneIterations = Int(Next(), "--tune-iterations", 1) },
                    "--threads" => s with { Threads = Int(Next(), "--threads", 0) },
                    var other => throw new ArgumentException($"Unknown option '{other}'."),
                };
            }

            if (!s.Help && !s.Grid && (s.Scenario is null || s.Method is null))
            {
                throw new ArgumentException("A run needs --scenario and --method (or --grid).");
            }

            if (s.Gamma > 1)
            {
                throw new ArgumentException("--gamma takes a value in (0, 1].");
            }

            return s;
        }

        private static string OneOf(string value, string[] allowed, string flag) =>
            allowed.Contains(value, StringComparer.Ordinal) ? value : throw new ArgumentException($"{flag} takes one of {string.Join(", ", allowed)}, not '{value}'.");

        private static int Int(string text, string flag, int min) =>
            int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min ? v : throw new ArgumentException($"{flag} takes an integer ≥ {min}, not '{text}'.");

        private static double Real(string text, string flag, bool positive) =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) && (positive ? v > 0 : v >= 0)
                ? v
                : throw new ArgumentException($"{flag} takes a {(positive ? "positive" : "non-negative")} number, not '{text}'.");
    }
}
