using System.Globalization;
using Federated.Learning.Privacy;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>FedBuff and the virtual clock in scenarios: validation, and short runs of the real hosts in this process.</summary>
public sealed class AsyncScenarioTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-async-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Shipped(string name) => Path.Combine(AppContext.BaseDirectory, "scenarios", "async", name);

    private static Scenario Smoke() => Scenario.Load(Shipped("fedbuff-smoke.json"));

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"s{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static List<Dictionary<string, string>> Rows(string run)
    {
        var lines = File.ReadAllLines(Path.Combine(run, "coordinator", "rounds.csv"));
        var header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal)).ToList();
    }

    private static double D(string value) => double.Parse(value, CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("""{ "clients": 4, "async": { "bufferSize": 5 } }""", "'async.bufferSize' must be between 1 and clients (4) (got 5)")]
    [InlineData("""{ "clients": 4, "async": { "bufferSize": 2, "concurrency": 0 } }""", "'async.concurrency' must be between 1 and clients (4) (got 0)")]
    [InlineData("""{ "clients": 4, "async": { "bufferSize": 2, "concurrency": 2, "staleness": { "function": "exp" } } }""", "'async.staleness.function' must be one of constant, polynomial, hinge (got 'exp')")]
    [InlineData("""{ "clients": 4, "async": { "bufferSize": 2, "concurrency": 2, "maxStaleness": -1 } }""", "maximum staleness must be between 0")]
    [InlineData("""{ "clients": 4, "strategy": { "name": "fedprox", "options": { "mu": "0.1" } }, "async": { "bufferSize": 2, "concurrency": 2 } }""", "'strategy' must be fedavg without options")]
    [InlineData("""{ "clients": 4, "mode": "virtual", "async": { "bufferSize": 2, "concurrency": 2 } }""", "'async' needs mode in-process or multi-process")]
    [InlineData("""{ "clients": 4, "compression": { "downlink": "q8" }, "async": { "bufferSize": 2, "concurrency": 2 } }""", "'compression.downlink' must be none")]
    [InlineData("""{ "clients": 4, "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1 }, "async": { "bufferSize": 2, "concurrency": 2 } }""", "'privacy.sampleRate' must be 1 with 'async'")]
    [InlineData("""{ "clients": 4, "speeds": { "distribution": "gamma" } }""", "'speeds' is invalid: speeds.Distribution must be uniform, loguniform or lognormal")]
    [InlineData("""{ "clients": 4, "speeds": { "spread": 0.1 } }""", "speeds.Spread must be between 1 and 1000000")]
    [InlineData("""{ "clients": 4, "stragglers": { "fraction": 0.5, "slowdown": 3 }, "speeds": { } }""", "'speeds' and 'stragglers' both slow agents down")]
    public void Load_BadAsyncOrSpeeds_NamesTheKey(string json, string expected)
    {
        var withData = json.Insert(1, """ "data": { "source": "synthetic" }, """);

        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(Write(withData)));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_AsyncAndSpeeds_MapOntoTheCoordinatorKeys()
    {
        var settings = FederationPlan.Coordinator(Smoke(), "/state");

        Assert.Equal("fedbuff", settings["Coordinator:Mode"]);
        Assert.Equal("3", settings["Coordinator:Async:BufferSize"]);
        Assert.Equal("4", settings["Coordinator:Async:Concurrency"]);
        Assert.Equal("polynomial", settings["Coordinator:Async:Staleness:Function"]);
        Assert.Equal("true", settings["Coordinator:VirtualClock:Enabled"]);
        Assert.Equal("loguniform", settings["Coordinator:VirtualClock:Distribution"]);
        Assert.Equal("10", settings["Coordinator:VirtualClock:Spread"]);
    }

    [Fact]
    public void ShippedFashionMnistScenarios_CompareOnTheSameAgents()
    {
        // Like the other shipped idx scenarios, these need Fashion-MNIST installed (bash scripts/setup.sh --data).
        var fedbuff = Scenario.Load(Shipped("fedbuff-100.json"));
        var fedavg = Scenario.Load(Shipped("fedavg-100.json"));

        Assert.NotNull(fedbuff.Async);
        Assert.Null(fedavg.Async);
        Assert.Equal(100, fedbuff.Clients);
        Assert.Equal(fedavg.Clients, fedbuff.Clients);
        Assert.Equal(fedavg.Seed, fedbuff.Seed);
        Assert.Equal(10, fedbuff.Speeds!.Spread);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(fedavg.Speeds), System.Text.Json.JsonSerializer.Serialize(fedbuff.Speeds));
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(fedavg.Training), System.Text.Json.JsonSerializer.Serialize(fedbuff.Training));
        Assert.Equal(fedavg.ResolvedSampled, fedbuff.Async!.BufferSize);
    }

    [Fact]
    public async Task Run_FedBuffSmoke_CompletesEveryFlushAndLearns()
    {
        var run = Path.Combine(_dir, "fedbuff");

        var code = await ScenarioRunner.RunAsync(Smoke(), run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var rows = Rows(run);
        Assert.Equal(6, rows.Count);
        Assert.Equal(Enumerable.Range(1, 6).Select(v => v.ToString(CultureInfo.InvariantCulture)), rows.Select(r => r["round"]));
        Assert.All(rows, r => Assert.Equal("3", r["results"]));

        // 4 classes: chance is 25 %.
        Assert.True(D(rows[^1]["test_accuracy"]) > 0.6, $"final accuracy {rows[^1]["test_accuracy"]}");

        // With 4 agents busy and a buffer of 3, some updates must be based on an older version than the one they land in.
        Assert.Contains(rows, r => D(r["mean_staleness"]) > 0);
        Assert.All(rows, r => Assert.InRange(D(r["max_staleness"]), 0, 3));

        // Virtual time moves forward with every flush; the fastest agent needs 1 s a task, so K = 3 updates take ≥ 1 s.
        var times = rows.Select(r => D(r["virtual_s"])).ToList();
        Assert.True(times[0] >= 1, $"first flush at {times[0]} virtual s");
        Assert.Equal(times.Order(), times);
        Assert.True(new HashSet<double>(times).Count == times.Count, "two flushes at the same virtual time");

        var report = await File.ReadAllTextAsync(Path.Combine(run, "report.md"));
        Assert.Contains("virtual clock (fedbuff)", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_FedBuffSmokeTwice_SameVirtualTimesAndStaleness()
    {
        // Results are applied in virtual-finish order, whatever order the shared cores finish them in.
        await ScenarioRunner.RunAsync(Smoke(), Path.Combine(_dir, "a"), TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));
        await ScenarioRunner.RunAsync(Smoke(), Path.Combine(_dir, "b"), TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        string Trace(string run) => string.Join(";", Rows(Path.Combine(_dir, run)).Select(r => $"{r["virtual_s"]}/{r["mean_staleness"]}/{r["selected"]}"));
        Assert.Equal(Trace("a"), Trace("b"));
    }

    [Fact]
    public async Task Run_SyncOnTheVirtualClock_EachRoundTakesItsSlowestAgent()
    {
        var scenario = Smoke();
        scenario.Async = null;
        scenario.Rounds = 2;
        var run = Path.Combine(_dir, "sync");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var settings = new Coordinator.Hosting.VirtualClockSettings { Enabled = true, Distribution = "loguniform", Spread = 10, Seconds = 1, Seed = scenario.Seed };
        var slowest = Enumerable.Range(0, scenario.Clients).Max(i => Coordinator.Rounds.VirtualClock.ComputeSeconds(settings, FederationPlan.AgentId(i)));
        var rows = Rows(run);
        Assert.Equal(slowest, D(rows[0]["virtual_s"]), 2);
        Assert.Equal(2 * slowest, D(rows[1]["virtual_s"]), 2);
    }

    [Fact]
    public async Task Run_FedBuffWithAnUplinkCodec_DecodesTheDeltasAndLearns()
    {
        var dense = Smoke();
        dense.Rounds = 3;
        var encoded = Smoke();
        encoded.Rounds = 3;
        encoded.Compression = new CompressionSection { Uplink = "q8", ErrorFeedback = true };
        encoded.Validate("test");

        Assert.Equal(0, await ScenarioRunner.RunAsync(dense, Path.Combine(_dir, "dense"), TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3)));
        Assert.Equal(0, await ScenarioRunner.RunAsync(encoded, Path.Combine(_dir, "q8"), TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3)));

        double UpPerUpdate(string run) => Rows(Path.Combine(_dir, run)).Sum(r => D(r["up_wire_bytes_total"])) / Rows(Path.Combine(_dir, run)).Sum(r => D(r["results"]));
        var ratio = UpPerUpdate("dense") / UpPerUpdate("q8");
        Assert.InRange(ratio, 2.5, 6); // 8 bits instead of 32 per value (bytes are counted when they arrive, results when applied)
        Assert.True(D(Rows(Path.Combine(_dir, "q8"))[^1]["test_accuracy"]) > 0.6);
    }

    [Fact]
    public async Task Run_FedBuffWithCentralDp_ChargesEachFlushAsOneStepWithQOne()
    {
        var scenario = Smoke();
        scenario.Rounds = 3;
        scenario.Privacy = new PrivacySection { SampleRate = 1, NoiseMultiplier = 0.8, Clip = 1, Delta = 1e-5 };
        scenario.Validate("test");
        var run = Path.Combine(_dir, "dp");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var rows = Rows(run);
        Assert.Equal(3, rows.Count);
        for (var flush = 1; flush <= 3; flush++)
        {
            var expected = RdpAccountant.Epsilon(1.0, 0.8, flush, 1e-5).Epsilon;
            Assert.Equal(expected, D(rows[flush - 1]["epsilon"]), 6);
        }
    }
}
