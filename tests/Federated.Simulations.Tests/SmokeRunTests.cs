using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>The smoke scenario end to end: the real coordinator and client hosts in this process over gRPC.</summary>
public sealed class SmokeRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-smoke-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Scenario Smoke(int rounds, bool deterministic = false)
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Rounds = rounds;
        scenario.Deterministic = deterministic;
        return scenario;
    }

    [Fact]
    public async Task Run_Smoke_WritesEveryFileOfTheRunFolder()
    {
        var run = Path.Combine(_dir, "run");
        var output = new StringWriter();

        var code = await ScenarioRunner.RunAsync(Smoke(2), run, output, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        foreach (var file in new[] { "scenario.json", "metrics.json", "metrics.csv", "summary.json", "accuracy.png", "loss.png", "bytes.png", "report.md", "partition.csv", "partition.png" })
        {
            Assert.True(new FileInfo(Path.Combine(run, file)).Length > 0, $"{file} is missing or empty");
        }

        var header = File.ReadLines(Path.Combine(run, "metrics.csv")).First().Split(',');
        foreach (var column in new[] { "round", "accuracy", "loss", "bytes_up", "bytes_down", "duration_s", "participants", "dropped" })
        {
            Assert.Contains(column, header);
        }

        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length);
        var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;
        foreach (var key in new[] { "final_accuracy", "rounds", "wall_s", "peak_rss_mb" })
        {
            Assert.True(summary.TryGetProperty(key, out _), $"summary.json lacks {key}");
        }

        Assert.Equal(2, summary.GetProperty("rounds").GetInt32());
        var partition = summary.GetProperty("partition_stats");
        Assert.Equal(3, partition.GetProperty("clients").GetInt32());
        Assert.Equal(200, partition.GetProperty("samples").GetProperty("median").GetDouble()); // 600 synthetic samples, iid over 3
        Assert.Equal(4, File.ReadAllLines(Path.Combine(run, "partition.csv")).Length);

        // The final model class by class: the smoke run's four synthetic classes, its accuracy the recorded one.
        var classes = summary.GetProperty("final_classes");
        Assert.Equal(2, classes.GetProperty("round").GetInt32());
        var perClass = classes.GetProperty("per_class_accuracy").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.Equal(4, perClass.Length);
        Assert.Equal(summary.GetProperty("final_accuracy").GetDouble(), perClass.Average(), 1e-4); // balanced test classes
        Assert.Equal(1.0, classes.GetProperty("predicted_share").EnumerateArray().Sum(v => v.GetDouble()), 1e-4);
        Assert.Contains("The final model (round 2) class by class", File.ReadAllText(Path.Combine(run, "report.md")), StringComparison.Ordinal);
        Assert.Equal(0x89, File.ReadAllBytes(Path.Combine(run, "accuracy.png"))[0]); // PNG signature
        Assert.Contains("round    2/2", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_SameSeedTwice_SameRoundOneModel()
    {
        await ScenarioRunner.RunAsync(Smoke(1, deterministic: true), Path.Combine(_dir, "a"), TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));
        await ScenarioRunner.RunAsync(Smoke(1, deterministic: true), Path.Combine(_dir, "b"), TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        string Checksum(string run)
        {
            var lines = File.ReadAllLines(Path.Combine(_dir, run, "coordinator", "rounds.csv"));
            var column = Array.IndexOf(lines[0].Split(','), "global_sha256");
            return lines[1].Split(',')[column];
        }

        // Each agent partitions with the scenario's seed, and the coordinator sums in agent-id order (deterministic):
        // the round-1 model matches bit for bit only if the partition, the initial model and the training match.
        Assert.Equal(Checksum("a"), Checksum("b"));
    }

    [Fact]
    public async Task Run_NonEmptyRunFolder_IsRefused()
    {
        var run = Path.Combine(_dir, "busy");
        Directory.CreateDirectory(run);
        await File.WriteAllTextAsync(Path.Combine(run, "x"), "x");

        await Assert.ThrowsAsync<IOException>(() => ScenarioRunner.RunAsync(Smoke(1), run, TextWriter.Null, CancellationToken.None));
    }

    [Fact]
    public async Task Run_WithDropouts_RoundsEndAtTheDeadlineAndCountThem()
    {
        var scenario = Smoke(2);
        scenario.Clients = 6;
        scenario.MinResults = 1;
        scenario.Dropout = 0.5;
        scenario.RoundDeadlineSeconds = 3;
        var run = Path.Combine(_dir, "faults");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var rows = File.ReadAllLines(Path.Combine(run, "metrics.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(2, rows.Count);
        var dropped = rows.Sum(r => int.Parse(r[7], System.Globalization.CultureInfo.InvariantCulture));
        var participants = rows.Sum(r => int.Parse(r[6], System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(dropped > 0, "with a 50 % dropout some of 12 tasks must be missing");
        Assert.Equal(12, dropped + participants);
        Assert.Contains(rows, r => double.Parse(r[5], System.Globalization.CultureInfo.InvariantCulture) >= 2.9); // a round waited for its deadline
    }

    [Fact]
    public async Task Run_VirtualClients_MaterialisesOnlySampledAgentsWithinThePool()
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "virtual-smoke.json"));
        scenario.Rounds = 2;
        var run = Path.Combine(_dir, "virtual");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var pool = summary.RootElement.GetProperty("virtual_pool");
        Assert.Equal(4, pool.GetProperty("capacity").GetInt32());
        Assert.InRange(pool.GetProperty("max_held").GetInt32(), 1, 4);
        Assert.Equal(2 * 8, pool.GetProperty("materialized").GetInt32()); // every sampled agent, once per round it was sampled
        var rows = File.ReadAllLines(Path.Combine(run, "metrics.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.All(rows, r => Assert.Equal("8", r[6]));

        // Only agents that were sampled ever existed, and each kept its state on disk between its rounds.
        var agentDirectories = Directory.GetDirectories(run, "agent-*");
        Assert.InRange(agentDirectories.Length, 8, 16);
        Assert.All(agentDirectories, d => Assert.True(File.Exists(Path.Combine(d, "state.json")) && File.Exists(Path.Combine(d, "local.safetensors")), d));
        Assert.Contains("at most", File.ReadAllText(Path.Combine(run, "report.md")), StringComparison.Ordinal);
    }
}
