using System.Text.Json;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

public sealed class ContinualScenarioTests : IDisposable
{
    private static readonly JsonSerializerOptions ReadOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("federated-continual-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("""{ "stream": "split-foo" }""", "'continual.stream'")]
    [InlineData("""{ "roundsPerExperience": 0 }""", "'continual.roundsPerExperience'")]
    [InlineData("""{ "stagger": -1 }""", "'continual.stagger'")]
    [InlineData("""{ "methods": [ "ewc", "si" ] }""", "'continual.methods'")]
    [InlineData("""{ "replayPolicy": "lru" }""", "'continual.replayPolicy'")]
    [InlineData("""{ "ewcGamma": 0 }""", "'continual.ewcGamma'")]
    [InlineData("""{ "replayBudjet": 10 }""", "replayBudjet")]
    public void Load_BadContinualValue_NamesTheKey(string continual, string key)
    {
        var path = Path.Combine(_dir, $"{Guid.NewGuid():N}.json");
        File.WriteAllText(path, $$"""{ "data": { "source": "synthetic", "syntheticClasses": 10 }, "continual": {{continual}} }""");

        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(path));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("split-class-fedavg-replay-ewc.json", false)]
    [InlineData("split-class-fedavg-replay-ewc-consolidated.json", true)]
    public void ShippedScenarios_MapOntoAgentAndCoordinatorKeys(string file, bool consolidated)
    {
        var scenario = JsonSerializer.Deserialize<Scenario>(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "scenarios", "continual", file)), ReadOptions)!;
        scenario.Data.Source = "synthetic"; // validate without the data set
        scenario.Validate(file);

        Assert.Equal(Path.GetFileNameWithoutExtension(file), scenario.Name);
        Assert.Equal(10, scenario.Clients);
        Assert.Equal(25, scenario.Rounds);
        Assert.Equal(1, scenario.Training.Epochs);
        var agent = FederationPlan.Agent(scenario, 3, "http://127.0.0.1:1", _dir);
        Assert.Equal("split-class", agent["Client:Continual:Stream"]);
        Assert.Equal("5", agent["Client:Continual:RoundsPerExperience"]);
        Assert.Equal("0", agent["Client:Continual:Offset"]);
        Assert.Equal("replay,ewc", agent["Client:Continual:Methods"]);
        Assert.Equal(consolidated ? "true" : "false", FederationPlan.Coordinator(scenario, _dir)["Coordinator:Continual:ConsolidateFisher"]);
    }

    [Fact]
    public async Task Run_TinyPermutedStream_WritesPerExperienceAccuracyAndTheMatrix()
    {
        var path = Path.Combine(_dir, "tiny.json");
        File.WriteAllText(path, """
            {
              "name": "continual-smoke",
              "data": { "source": "synthetic", "partition": "iid", "normalization": "none", "syntheticCount": 240, "syntheticClasses": 4 },
              "clients": 2, "model": "mlp", "rounds": 2, "roundDeadlineSeconds": 120, "seed": 1, "deterministic": true,
              "training": { "epochs": 1, "batchSize": 32, "optimizer": "sgd", "learningRate": 0.05 },
              "continual": { "stream": "permuted", "experiences": 2, "roundsPerExperience": 1, "methods": [ "replay", "ewc" ],
                             "fisherSamples": 16, "replayBudget": 20, "consolidateFisher": true }
            }
            """);
        var run = Path.Combine(_dir, "run");

        var code = await ScenarioRunner.RunAsync(Scenario.Load(path), run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var header = File.ReadLines(Path.Combine(run, "metrics.csv")).First().Split(',');
        Assert.Contains("accuracy_exp0", header);
        Assert.Contains("accuracy_exp1", header);
        var continual = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement.GetProperty("continual");
        Assert.Equal(2, continual.GetProperty("matrix").GetArrayLength());
        Assert.InRange(continual.GetProperty("average_accuracy").GetDouble(), 0, 1);
        Assert.True(continual.GetProperty("consolidate_fisher").GetBoolean());

        // Round 2 crossed the boundary: each agent uploaded its Fisher diagonal, and its continual state is on disk.
        var rounds = File.ReadAllLines(Path.Combine(run, "coordinator", "rounds.csv"));
        var column = Array.IndexOf(rounds[0].Split(','), "agg_continual_fisher_agents");
        Assert.True(column >= 0, "no Fisher consolidation metric in rounds.csv");
        Assert.Equal("2", rounds[2].Split(',')[column]);
        Assert.NotEmpty(Directory.GetFiles(run, Federated.Learning.Continual.ContinualState.ManifestFile, SearchOption.AllDirectories));
    }

    [Fact]
    public void Stagger_OffsetsEachAgent()
    {
        var scenario = new Scenario { Data = { Source = "synthetic" }, Continual = new ContinualSection { Stagger = 2 } };

        Assert.Equal("6", FederationPlan.Agent(scenario, 3, "http://127.0.0.1:1", _dir)["Client:Continual:Offset"]);
        Assert.False(FederationPlan.Agent(new Scenario(), 0, "http://127.0.0.1:1", _dir).ContainsKey("Client:Continual:Stream"));
    }
}
