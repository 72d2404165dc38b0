using System.Diagnostics;
using System.Globalization;
using System.Text;
using Federated.Learning.Robustness;

namespace Federated.Benchmarks;

/// <summary>
/// <c>federated-bench robust [--n N] [--d D] [--repeats R] [--rules "SPEC;SPEC"] [--out FILE]</c>: times the robust
/// aggregation rules (a default list, or the <see cref="RobustAggregators.Parse"/> specifications given) on n
/// synthetic updates of d float32 (defaults 100 × 1,000,000), then Krum as n doubles (25, 50, 100, 200; skipped
/// with <c>--rules</c>). Every figure is the median of R runs after one warm-up run: wall seconds, and the
/// process's CPU seconds (user + system), which other jobs on a shared machine disturb less.
/// </summary>
internal static class RobustBenchmark
{
    public static int Run(string[] args)
    {
        int n = 100, d = 1_000_000, repeats = 3;
        string? output = null;
        string[]? only = null;
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--n": n = Positive(Next(), "--n"); break;
                    case "--d": d = Positive(Next(), "--d"); break;
                    case "--repeats": repeats = Positive(Next(), "--repeats"); break;
                    case "--rules": only = Next().Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries); break;
                    case "--out": output = Next(); break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'. Options: --n N, --d D, --repeats R, --rules \"SPEC;SPEC\", --out FILE.");
                }
            }
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"federated-bench robust: {e.Message}");
            return 2;
        }

        var report = new StringBuilder();
        void Say(string line)
        {
            Console.WriteLine(line);
            report.AppendLine(line);
        }

        var f = n / 10;
        var rules = only ??
        [
            "mean",
            "median",
            "trimmed_mean:beta=0.1",
            $"krum:f={f}",
            $"multikrum:f={f}",
            $"bulyan:f={f}",
            "geometric_median",
            "geometric_median:iterations=10,tolerance=0",
            "centered_clipping:tau=10,iterations=5",
            "bucketing:s=2 > centered_clipping:tau=10,iterations=5",
            "norm_bound:bound=median",
        ];
        var updates = Synthetic(only is null ? Math.Max(n, 200) : n, d);
        Say(Inv($"- {Environment.ProcessorCount} logical cores, .NET {Environment.Version}; median of {repeats} runs after one warm-up"));
        Say("- updates: one shared direction plus independent uniform noise per update, float32, weights 1");
        if (File.Exists("/proc/loadavg"))
        {
            Say($"- load average when the run started (other jobs share the cores): {File.ReadAllText("/proc/loadavg").Trim()}");
        }

        Say("");
        Say(Inv($"| rule (n = {n}, d = {d:N0}) | wall s (median) | CPU s (median) | wall s, all runs |"));
        Say("|---|---:|---:|---|");
        var cohort = updates.Take(n).ToList();
        foreach (var spec in rules)
        {
            var rule = RobustAggregators.Parse(spec);
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
            var (wall, cpu) = Time(rule, cohort, repeats, metrics);
            var note = metrics.TryGetValue("robust.iterations", out var iterations) ? Inv($" ({iterations} iterations)") : "";
            Say(Inv($"| `{rule.Name}`{note} | {Median(wall):F3} | {Median(cpu):F3} | {string.Join(", ", wall.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))} |"));
        }

        if (only is null)
        {
            Say("");
            Say(Inv($"| Krum, d = {d:N0} | f | wall s (median) | CPU s (median) | CPU × previous |"));
            Say("|---:|---:|---:|---:|---:|");
            double? previous = null;
            foreach (var size in new[] { 25, 50, 100, 200 })
            {
                var krum = MultiKrum.Krum(size / 10);
                var (wall, cpu) = Time(krum, updates.Take(size).ToList(), repeats, null);
                var seconds = Median(cpu);
                Say(Inv($"| n = {size} | {krum.F} | {Median(wall):F3} | {seconds:F3} | {(previous is { } p ? (seconds / p).ToString("F2", CultureInfo.InvariantCulture) : "")} |"));
                previous = seconds;
            }
        }

        Say("");
        Say($"Command: `dotnet run -c Release --project benchmarks/Federated.Benchmarks -- {string.Join(' ', args.Select(Quote).Prepend("robust"))}`");
        if (output is not null)
        {
            File.WriteAllText(output, report.ToString());
            Console.WriteLine($"wrote {output}");
        }

        return 0;
    }

    private static (List<double> Wall, List<double> Cpu) Time(IRobustAggregator rule, List<ReadOnlyMemory<float>> updates, int repeats, Dictionary<string, double>? metrics)
    {
        var weights = Enumerable.Repeat(1.0, updates.Count).ToList();
        var context = new RobustContext { Round = 1, Metrics = metrics };
        rule.Aggregate(updates, weights, context);
        var wall = new List<double>();
        var cpu = new List<double>();
        using var process = Process.GetCurrentProcess();
        for (var r = 0; r < repeats; r++)
        {
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var started = Stopwatch.GetTimestamp();
            rule.Aggregate(updates, weights, context);
            wall.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
            process.Refresh();
            cpu.Add((process.TotalProcessorTime - cpuBefore).TotalSeconds);
        }

        return (wall, cpu);
    }

    /// <summary>n updates g + uᵢ/2 with one shared direction g and uniform noise uᵢ ∈ [−0.5, 0.5), from per-update xorshift streams.</summary>
    private static List<ReadOnlyMemory<float>> Synthetic(int n, int d)
    {
        var shared = Noise(d, 12345);
        var result = new ReadOnlyMemory<float>[n];
        Parallel.For(0, n, i =>
        {
            var update = Noise(d, (ulong)i + 1);
            for (var j = 0; j < d; j++)
            {
                update[j] = (0.5f * update[j]) + shared[j];
            }

            result[i] = update;
        });
        return [.. result];
    }

    private static float[] Noise(int d, ulong seed)
    {
        var state = (seed * 0x9E3779B97F4A7C15UL) | 1;
        var values = new float[d];
        for (var j = 0; j < d; j++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values[j] = ((state >> 40) * (1f / (1 << 24))) - 0.5f;
        }

        return values;
    }

    private static string Quote(string arg) => arg.AsSpan().IndexOfAny(" ;>|&") >= 0 ? $"\"{arg}\"" : arg;

    private static int Positive(string text, string name) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"{name} takes a positive integer, not '{text}'.");

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
