using Federated.Learning.Checkpoints;
using Federated.Learning.Models;
using Federated.Learning.Personalization;
using Federated.Learning.Weights;
using Federated.Simulations.Scenarios;
using TorchSharp;

namespace Federated.Simulations.Tests;

/// <summary>Personalisation scenarios: their validation, and FedPer end to end with per-agent local test spreads.</summary>
public sealed class PersonalisationRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-personal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"s{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Theory]
    [InlineData("""{ "data": { "source": "synthetic", "localTestFraction": 0.95 } }""", "'data.localTestFraction' must be between 0")]
    [InlineData("""{ "data": { "source": "synthetic", "localTestFraction": -0.1 } }""", "'data.localTestFraction' must be between 0")]
    [InlineData("""{ "clients": 6, "data": { "source": "synthetic", "localTestFraction": 0.2 }, "secureAggregation": { } }""", "'data.localTestFraction' needs synchronous rounds")]
    [InlineData("""{ "data": { "source": "synthetic" }, "strategy": { "name": "fedper", "options": { "head": "fc3", "head_layers": "1" } } }""", "exclude each other")]
    [InlineData("""{ "data": { "source": "synthetic" }, "strategy": { "name": "fedper", "options": { "head_layers": "0" } } }""", "'head_layers' must be at least 1")]
    [InlineData("""{ "data": { "source": "synthetic" }, "strategy": { "name": "ditto", "options": { "lambda": "-1" } } }""", "lambda")]
    [InlineData("""{ "data": { "source": "synthetic" }, "strategy": { "name": "ditto", "options": { "lambda": "0.1", "head": "fc3" } } }""", "no option 'head'")]
    [InlineData("""{ "data": { "source": "synthetic", "localTestFraktion": 0.2 } }""", "localTestFraktion")]
    [InlineData("""{ "data": { "source": "synthetic" }, "model": "mlp", "strategy": { "name": "fedper", "options": { "head": "fc9" } } }""", "'fc9' names no weight of the model")]
    [InlineData("""{ "data": { "source": "synthetic" }, "model": "simple-cnn", "strategy": { "name": "fedper", "options": { "head_layers": "5" } } }""", "would be the whole model")]
    public void Load_BadPersonalisationValue_SaysWhy(string json, string message)
    {
        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(Write(json)));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShippedPersonalisationScenarios_DifferOnlyInTheStrategy()
    {
        if (!Directory.Exists(new DataSection().ResolvedDirectory))
        {
            return; // needs Fashion-MNIST, which CI machines may not have
        }

        var shipped = new[] { "fedavg", "fedper", "ditto" }
            .Select(name => Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "personalisation", name + ".json")))
            .ToList();

        Assert.Equal(["fedavg", "fedper", "ditto"], shipped.Select(s => s.Strategy.Name));
        foreach (var scenario in shipped)
        {
            Assert.Equal(("dirichlet:0.1", 20, 20, "simple-cnn", 0.2), (scenario.Data.Partition, scenario.Clients, scenario.ResolvedSampled, scenario.Model, scenario.Data.LocalTestFraction));
            scenario.Strategy = shipped[0].Strategy;
            scenario.Name = shipped[0].Name;
            Assert.Equal(shipped[0].ToJson(), scenario.ToJson());
        }
    }

    [Fact]
    public async Task Run_FedPer_ReportsPerAgentSpreads_AndNeverMovesTheGlobalHead()
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Strategy = new StrategySection { Name = "fedper", Options = new() { ["head_layers"] = "1" } };
        scenario.Data.LocalTestFraction = 0.25;
        scenario.Data.Partition = "shards:2";
        scenario.Rounds = 2;
        var run = Path.Combine(_dir, "run");

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        // Spreads in metrics.csv (after the existing columns), metrics.json, summary.json and report.md.
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        var header = lines[0].Split(',');
        Assert.Equal(["round", "accuracy", "loss", "bytes_up", "bytes_down", "duration_s", "participants", "dropped", "slowest_train_s"], header[..9]);
        Assert.Equal(["local_acc_n", "local_acc_mean", "local_acc_std", "local_acc_min", "local_acc_p10", "local_acc_median", "local_acc_max"], header[9..]);
        var last = lines[2].Split(',');
        Assert.Equal("3", last[9]);
        var mean = double.Parse(last[10], System.Globalization.CultureInfo.InvariantCulture);
        var min = double.Parse(last[12], System.Globalization.CultureInfo.InvariantCulture);
        var max = double.Parse(last[15], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(mean, min, max);
        var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;
        Assert.Equal(3, summary.GetProperty("local_accuracy").GetProperty("count").GetInt32());
        Assert.Contains("per-agent local test accuracy", File.ReadAllText(Path.Combine(run, "report.md")), StringComparison.Ordinal);

        // The coordinator's per-agent rows: every agent, every round; the means agree with rounds.csv.
        var agents = File.ReadAllLines(Path.Combine(run, "coordinator", "agents.csv"));
        Assert.Equal(1 + (3 * 2), agents.Length);
        var columns = agents[0].Split(',');
        var round2 = agents.Skip(1).Select(l => l.Split(',')).Where(r => r[Array.IndexOf(columns, "round")] == "2")
            .Select(r => double.Parse(r[Array.IndexOf(columns, "local_test_accuracy")], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(mean, round2.Average(), 4);

        // Round 2's global model moved its body but not its head: no agent's head was ever aggregated.
        using var model = ModelFactory.Create(scenario.Model, ModelShape.FromSample([1, 28, 28], scenario.Data.SyntheticClasses), torch.CPU);
        var head = HeadSelection.LastLayers(1).Resolve(new ModelWeights(model).Layout).Select(e => e.Name).ToList();
        var checkpoints = Directory.GetFiles(Path.Combine(run, "coordinator"), "round-*.safetensors", SearchOption.AllDirectories).Order().ToList();
        Assert.Equal(2, checkpoints.Count);
        var first = SafeTensorsFile.Read(checkpoints[0]);
        var second = SafeTensorsFile.Read(checkpoints[1]);
        foreach (var name in head)
        {
            Assert.Equal(first[name].ToSingles(), second[name].ToSingles());
        }

        Assert.NotEqual(first["fc1.weight"].ToSingles(), second["fc1.weight"].ToSingles());
    }
}
