using System.Text.Json;
using Federated.Simulations.Grid;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>The scenario's attack section, the colluding channel and short attacked runs of the real agents.</summary>
public sealed class AttackTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-attack-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"s{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private Scenario Load(string attack, string extra = "") => Scenario.Load(Write(
        $$"""{ "data": { "source": "synthetic" }, "clients": 10, "rounds": 5, {{extra}} "attack": {{attack}} }"""));

    [Theory]
    [InlineData("""{ "kind": "backdoor", "fraction": 0.2 }""", "'attack.kind'")]
    [InlineData("""{ "kind": "signflip", "fraction": 1.2 }""", "'attack.fraction'")]
    [InlineData("""{ "kind": "signflip" }""", "'attack.fraction'")]
    [InlineData("""{ "kind": "none", "fraction": 0.2 }""", "'attack.fraction'")]
    [InlineData("""{ "kind": "signflip", "fraction": 0.99 }""", "'attack.fraction'")]
    [InlineData("""{ "kind": "signflip", "fraction": 0.2, "startRound": 0 }""", "'attack.startRound'")]
    [InlineData("""{ "kind": "signflip", "fraction": 0.2, "startRound": 6 }""", "'attack.startRound'")]
    [InlineData("""{ "kind": "signflip", "fraction": 0.2, "scale": -1 }""", "'attack.scale'")]
    [InlineData("""{ "kind": "noise", "fraction": 0.2, "scale": 2 }""", "'attack.scale'")]
    [InlineData("""{ "kind": "noise", "fraction": 0.2, "sigma": 0 }""", "'attack.sigma'")]
    [InlineData("""{ "kind": "signflip", "fraction": 0.2, "sigma": 1 }""", "'attack.sigma'")]
    [InlineData("""{ "kind": "ipm", "fraction": 0.2, "z": 1 }""", "'attack.z'")]
    [InlineData("""{ "kind": "alie", "fraction": 0.2, "epsilon": 1 }""", "'attack.epsilon'")]
    [InlineData("""{ "kind": "alie", "fraction": 0.2, "variant": "psychic" }""", "'attack.variant'")]
    [InlineData("""{ "kind": "zero", "fraction": 0.2, "variant": "estimated" }""", "'attack.variant'")]
    [InlineData("""{ "kind": "ipm", "fraction": 0.2, "estimateRuns": 3 }""", "'attack.estimateRuns'")]
    [InlineData("""{ "kind": "ipm", "fraction": 0.2, "variant": "estimated", "estimateRuns": 1 }""", "'attack.estimateRuns'")]
    [InlineData("""{ "kind": "alie", "fraction": 0.6 }""", "'attack.z'")] // f = 6 of n = 10: a majority, the formula has no z
    [InlineData("""{ "kind": "signflip", "fraction": 0.2, "boost": 3 }""", "boost")]
    public void Load_BadAttack_NamesTheKey(string attack, string key)
    {
        var error = Assert.Throws<ScenarioException>(() => Load(attack));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_OmniscientInMultiProcessMode_IsRefused()
    {
        var error = Assert.Throws<ScenarioException>(() => Load("""{ "kind": "ipm", "fraction": 0.2 }""", "\"mode\": \"multi-process\","));

        Assert.Contains("'attack.variant'", error.Message, StringComparison.Ordinal);
        Assert.Contains("estimated", error.Message, StringComparison.Ordinal);
        Assert.Equal("ipm", Load("""{ "kind": "ipm", "fraction": 0.2, "variant": "estimated" }""", "\"mode\": \"multi-process\",").Attack.Kind);
    }

    [Fact]
    public void Plan_GivesTheAttackOnlyToTheAttackersTheSeedChooses()
    {
        var scenario = Load("""{ "kind": "alie", "fraction": 0.3, "startRound": 2 }""");

        var attackers = scenario.Attack.Choose(scenario.Clients, scenario.Seed);
        var settings = Enumerable.Range(0, 10).Select(i => FederationPlan.Agent(scenario, i, "http://127.0.0.1:1", _dir)).ToList();

        Assert.Equal(3, attackers.Count);
        Assert.Equal(attackers, scenario.Attack.Choose(10, scenario.Seed));
        Assert.NotEqual(attackers, scenario.Attack.Choose(10, scenario.Seed + 1));
        Assert.NotEqual(attackers, scenario.Stragglers.Choose(10, scenario.Seed)); // its own draw, not the stragglers'
        for (var i = 0; i < 10; i++)
        {
            if (attackers.Contains(i))
            {
                Assert.Equal("alie", settings[i]["Client:Attack:Kind"]);
                Assert.Equal("2", settings[i]["Client:Attack:StartRound"]);
                Assert.Equal("10", settings[i]["Client:Attack:Clients"]);
                Assert.Equal("3", settings[i]["Client:Attack:Attackers"]);
                Assert.Equal("omniscient", settings[i]["Client:Attack:Variant"]);
            }
            else
            {
                Assert.DoesNotContain(settings[i].Keys, k => k.StartsWith("Client:Attack:", StringComparison.Ordinal));
            }
        }
    }

    [Fact]
    public async Task Channel_AttackerWaitsForEveryAnnouncedHonestAgent_InAgentIdOrder()
    {
        var channel = new InProcessColludingChannel(TimeProvider.System);
        channel.Expect(1, "b");
        channel.Expect(1, "a");
        channel.Expect(1, "c");

        var waiting = channel.HonestUpdatesAsync(1, TimeSpan.FromSeconds(30), CancellationToken.None);
        channel.Publish(1, "b", [2f]);
        channel.Publish(2, "a", [9f]); // another round
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        channel.Withdraw(1, "c");     // c's task failed
        Assert.False(waiting.IsCompleted);
        channel.Publish(1, "a", [1f]);
        var honest = await waiting.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([[1f], [2f]], honest);
    }

    [Fact]
    public async Task Channel_Timeout_ReturnsWhatWasPublished()
    {
        var channel = new InProcessColludingChannel(TimeProvider.System);
        channel.Expect(3, "a");
        channel.Expect(3, "b");
        channel.Publish(3, "a", [1f]);

        var honest = await channel.HonestUpdatesAsync(3, TimeSpan.FromMilliseconds(200), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([[1f]], honest);
        Assert.Empty(await channel.HonestUpdatesAsync(4, TimeSpan.FromMilliseconds(50), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private static readonly JsonSerializerOptions CamelCase = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static Scenario Smoke(string attack, string? aggregator, int clients = 5)
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Clients = clients;
        scenario.Rounds = 2;
        scenario.Data.SyntheticCount = 100 * clients;
        if (aggregator is not null)
        {
            scenario.Strategy.Options["aggregator"] = aggregator;
        }

        scenario.Attack = JsonSerializer.Deserialize<AttackSection>(attack, CamelCase)!;
        scenario.Validate("test");
        return scenario;
    }

    [Fact]
    public async Task Run_SignFlipAttackers_ReportNamesThemAndCountsTheRejectedUpdates()
    {
        // One of five agents boosts its flipped delta 1000-fold; the median's validation rejects it by norm each round.
        var scenario = Smoke("""{ "kind": "signflip", "fraction": 0.2, "scale": 1000 }""", "median");
        var attacker = FederationPlan.AgentId(Assert.Single(scenario.Attack.Choose(5, scenario.Seed)));
        var run = Path.Combine(_dir, "signflip");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var attack = summary.RootElement.GetProperty("attack");
        Assert.Equal("signflip", attack.GetProperty("kind").GetString());
        Assert.Equal([attacker], attack.GetProperty("attackers").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(2, summary.RootElement.GetProperty("rejected").GetInt32());
        Assert.Equal("median", summary.RootElement.GetProperty("aggregator").GetString());
        var report = File.ReadAllText(Path.Combine(run, "report.md"));
        Assert.Contains($"signflip scale 1000 from round 1**, 1 of 5 clients: {attacker}", report, StringComparison.Ordinal);
        Assert.Contains("rejected updates: 2", report, StringComparison.Ordinal);
        var log = File.ReadAllText(Path.Combine(run, "coordinator.log"));
        Assert.Contains($"update of agent {attacker} left out by the aggregation", log, StringComparison.Ordinal);
        Assert.Contains("attack signflip", File.ReadAllText(Path.Combine(run, "agents.log")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_OmniscientAlie_AttackerReadsEveryHonestUpdateOfTheRound()
    {
        var scenario = Smoke("""{ "kind": "alie", "fraction": 0.2, "z": 1 }""", "trimmed_mean:beta=0.2");
        var run = Path.Combine(_dir, "alie");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var log = File.ReadAllText(Path.Combine(run, "agents.log"));
        Assert.Contains("round 1 attack alie on 4 reference updates", log, StringComparison.Ordinal);
        Assert.Contains("round 2 attack alie on 4 reference updates", log, StringComparison.Ordinal);
        Assert.DoesNotContain("no honest update", log, StringComparison.Ordinal);
    }

    [Fact]
    public void Collect_BuildsOneRowPerAttackAndFractionBesideTheCleanRun()
    {
        void Summary(string name, string? aggregator, string? kind, double fraction, double accuracy, int rejected = 0)
        {
            Directory.CreateDirectory(Path.Combine(_dir, "grid", name));
            var attack = kind is null ? "null" : $$"""{ "kind": "{{kind}}", "fraction": {{fraction}}, "description": "{{kind}} scale 4 from round 1", "attackers": ["agent-0001"] }""";
            File.WriteAllText(Path.Combine(_dir, "grid", name, "summary.json"),
                $$"""{ "scenario": "{{name}}", "partition": "iid", "aggregator": {{(aggregator is null ? "null" : $"\"{aggregator}\"")}}, "attack": {{attack}}, "final_accuracy": {{accuracy}}, "rejected": {{rejected}}, "failed_rounds": 0 }""");
        }

        Summary("iid-clean-fedavg", null, null, 0, 0.85);
        Summary("iid-signflip-02-fedavg", null, "signflip", 0.2, 0.10);
        Summary("iid-signflip-02-median", "median", "signflip", 0.2, 0.83);
        Summary("iid-signflip-02-bucketing", "bucketing:s=2 > centered_clipping:tau=1", "signflip", 0.2, 0.84, rejected: 3);
        Summary("iid-signflip-03-median", "median", "signflip", 0.3, 0.80);

        var markdown = ResultsTable.Markdown(ResultsTable.ReadAll(Path.Combine(_dir, "grid")));

        Assert.Contains("clean FedAvg: **85.0**", markdown, StringComparison.Ordinal);
        Assert.Contains("| attack | attackers | FedAvg | median | bucketing + … | best robust − clean |", markdown, StringComparison.Ordinal);
        Assert.Contains("| signflip scale 4 | 20 % | 10.0 | 83.0 | 84.0 (r 3) | −1.0 |", markdown, StringComparison.Ordinal);
        Assert.Contains("| signflip scale 4 | 30 % | – | 80.0 | – | −5.0 |", markdown, StringComparison.Ordinal);
        Assert.Contains("`bucketing:s=2 > centered_clipping:tau=1`", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void GridScript_WritesValidScenarios()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Federated.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("The repository root was not found.");
        }

        if (!Directory.Exists(new DataSection().ResolvedDirectory))
        {
            return; // the grid's scenarios need Fashion-MNIST.
        }

        var output = Path.Combine(_dir, "grid-dry");
        using var script = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", [Path.Combine(root, "simulations", "grids", "robustness.sh"), "--dry-run", "--out", output])
        {
            RedirectStandardOutput = true,
        })!;
        var listed = script.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(script.WaitForExit(60_000));
        Assert.Equal(0, script.ExitCode);

        Assert.Equal(2 + (2 * 2 * 7 * 7), listed.Length);
        var scenarios = listed.Select(Scenario.Load).ToList();
        Assert.All(scenarios, s => Assert.Equal((20, 1000, 20, "simple-cnn"), (s.Clients, s.Data.MaxExamplesPerClient, s.Rounds, s.Model)));
        Assert.Equal(2, scenarios.Count(s => !s.Attack.IsActive));
        Assert.Equal(6, scenarios.Single(s => s.Name == "dirichlet0.5-alie-03-multikrum").Attack.Count(20));
    }
}
