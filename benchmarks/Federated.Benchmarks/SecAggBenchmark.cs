using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using Federated.Learning.Privacy;
using Federated.Learning.SecureAggregation;

namespace Federated.Benchmarks;

/// <summary>
/// <c>federated-bench secagg [--n 10,100,500] [--d 225034,1000000] [--repeats R] [--out FILE]</c>: the cost of a
/// whole in-memory SecAgg+ round (<see cref="InMemorySecureAggregation"/>, default degree and threshold, 32-bit ring,
/// no dropouts, then one row with 10 % dropouts after the shares) for every n × d: an agent's compute time and bytes,
/// the coordinator's compute time, the upload relative to the ring-encoded vector; then the masking time of one
/// agent for n = 100 and d = 1,000,000 (median of R runs after a warm-up, on all cores and on one).
/// </summary>
internal static class SecAggBenchmark
{
    public static int Run(string[] args)
    {
        int[] ns = [10, 100, 500];
        int[] ds = [225_034, 1_000_000];
        var repeats = 5;
        string? output = null;
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--n": ns = List(Next(), "--n"); break;
                    case "--d": ds = List(Next(), "--d"); break;
                    case "--repeats": repeats = List(Next(), "--repeats")[0]; break;
                    case "--out": output = Next(); break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'. Options: --n N,N,..., --d D,D,..., --repeats R, --out FILE.");
                }
            }
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"federated-bench secagg: {e.Message}");
            return 2;
        }

        var report = new StringBuilder();
        void Say(string line)
        {
            Console.WriteLine(line);
            report.AppendLine(line);
        }

        Say("# Secure aggregation (SecAgg+) costs");
        Say("");
        Say(Inv($"- {Environment.ProcessorCount} logical cores, {RuntimeInformation.ProcessArchitecture}, .NET {Environment.Version}, {RuntimeInformation.OSDescription}; Vector256 accelerated: {Vector256.IsHardwareAccelerated}"));
        Say("- one in-memory round per row: 32-bit ring, clip ±1, stochastic rounding, default degree k = 2⌈log₂ n⌉ and threshold t = ⌊k/2⌋ + 1; times are compute only (no network)");
        Say("- agent ms: mean over agents of all four stages (key generation, signing, agreement, Shamir, encryption, quantisation, masking, unmasking); masking ms: the masked-input stage alone");
        Say("- bytes: what an agent that sent its masked input uploaded over the four stages, and that relative to the ring-encoded vector alone (⌈32 d / 8⌉ bytes)");
        Say("");
        Say("| n | d | k | t | dropouts | agent ms | masking ms | agent upload bytes | upload / ring vector | agent download bytes | coordinator ms | of which unmask ms | round wall s |");
        Say("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var d in ds)
        {
            var input = new float[d];
            foreach (var n in ns)
            {
                Say(Row(n, d, input, dropout: 0));
            }

            Say(Row(100, d, input, dropout: 0.1));
        }

        Say("");
        Say("## Masking one agent's update: n = 100, d = 1,000,000, default degree (14 pairwise masks + the self mask)");
        Say("");
        Say("| threads | median wall ms | median CPU ms (all threads) | wall runs (ms) |");
        Say("|---|---:|---:|---|");
        foreach (var parallelism in new[] { -1, 1 })
        {
            var (wall, cpu) = MaskingRuns(1_000_000, NeighbourGraph.DefaultDegree(100) + 1, parallelism, repeats);
            Say(Inv($"| {(parallelism == 1 ? "1" : $"all ({Environment.ProcessorCount})")} | {Median(wall):F1} | {Median(cpu):F1} | {string.Join(", ", wall.Select(r => r.ToString("F1", CultureInfo.InvariantCulture)))} |"));
        }

        Say("");
        Say($"Command: `{$"nice -n 15 dotnet run -c Release --project benchmarks/Federated.Benchmarks -- secagg {string.Join(' ', args)}".TrimEnd()}`");
        if (output is { } path)
        {
            File.WriteAllText(path, report.ToString());
            Console.WriteLine($"wrote {path}");
        }

        return 0;
    }

    private static string Row(int n, int d, float[] input, double dropout)
    {
        var scenario = new SecureAggregationScenario
        {
            Agents = n,
            Length = d,
            Seed = $"bench-{n}-{d}",
            ComputePlaintextSum = false,
            Dropouts = new Dictionary<SecureAggregationStage, double> { [SecureAggregationStage.MaskedInput] = dropout },
        };
        var degree = scenario.Options.ResolveDegree(n);
        var threshold = scenario.Options.ResolveThreshold(degree);
        var start = Stopwatch.GetTimestamp();
        var run = InMemorySecureAggregation.Run(scenario, u =>
        {
            ChaCha20Random.FromSeed($"update-{u}").FillGaussian(input, 0.05);
            return input;
        });
        var wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var c = run.Costs;
        return Inv($"| {n} | {d:N0} | {degree} | {threshold} | {(dropout == 0 ? "none" : $"{dropout:P0} after sharing")} | {c.AgentMilliseconds:F1} | {c.AgentMaskingMilliseconds:F1} | {c.AgentUploadBytes:N0} | {c.AgentUploadBytes / c.RingVectorBytes:F4}× | {c.AgentDownloadBytes:N0} | {c.CoordinatorMilliseconds:F0} | {c.CoordinatorUnmaskMilliseconds:F0} | {wall:F1} |");
    }

    private static (List<double> Wall, List<double> Cpu) MaskingRuns(int d, int masks, int parallelism, int repeats)
    {
        var terms = Enumerable.Range(0, masks).Select(m => new MaskTerm([.. Enumerable.Range(0, 32).Select(i => (byte)(i + m))], m % 2 == 1)).ToArray();
        var vector = new uint[d];
        var wall = new List<double>();
        var cpu = new List<double>();
        using var process = Process.GetCurrentProcess();
        for (var r = 0; r <= repeats; r++)
        {
            process.Refresh();
            var cpuStart = process.TotalProcessorTime;
            var start = Stopwatch.GetTimestamp();
            MaskExpansion.Apply(vector, terms, 32, parallelism);
            var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            process.Refresh();
            if (r > 0)
            {
                wall.Add(elapsed);
                cpu.Add((process.TotalProcessorTime - cpuStart).TotalMilliseconds);
            }
        }

        return (wall, cpu);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static int[] List(string text, string name) =>
        [.. text.Split(',', StringSplitOptions.TrimEntries).Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new ArgumentException($"{name} takes positive integers separated by commas, not '{text}'."))];

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
