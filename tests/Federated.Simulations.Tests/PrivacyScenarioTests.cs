using System.Globalization;
using System.Text.Json;
using Federated.Coordinator.Hosting;
using Federated.Learning.Privacy;
using Federated.Simulations.Scenarios;
using Microsoft.Extensions.Configuration;

namespace Federated.Simulations.Tests;

/// <summary>The scenario's <c>privacy</c> section: strict validation, the coordinator keys, and a private run end to end.</summary>
public sealed class PrivacyScenarioTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-privacy-scenario-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"s{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static Scenario Smoke() => Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));

    [Theory]
    [InlineData("""{ "privacy": { "sampleRate": 0, "noiseMultiplier": 1 } }""", "'privacy.sampleRate'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1, "delta": 2 } }""", "'privacy.delta'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5 } }""", "'privacy.noiseMultiplier/targetEpsilon'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1, "targetEpsilon": 2 } }""", "'privacy.noiseMultiplier/targetEpsilon'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1, "clip": -1 } }""", "'privacy.clip'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1, "budget": -3 } }""", "'privacy.budget'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1, "budget": 0.001 } }""", "EpsilonBudget")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1, "adaptive": { "targetQuantile": 0.5 } } }""", "'privacy.adaptive.countNoiseStddev'")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "noiseMultiplier": 3, "adaptive": { "countNoiseStddev": 1 } } }""", "2σ_b")]
    [InlineData("""{ "privacy": { "sampleRate": 0.5, "epsilon": 1 } }""", "epsilon")]
    [InlineData("""{ "clients": 4, "sampledPerRound": 2, "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1 } }""", "'sampledPerRound'")]
    [InlineData("""{ "clients": 4, "minResults": 2, "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1 } }""", "'minResults'")]
    [InlineData("""{ "strategy": { "name": "scaffold" }, "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1 } }""", "scaffold")]
    public void Load_BadPrivacyValue_NamesTheKey(string json, string key)
    {
        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(Write("{ \"data\": { \"source\": \"synthetic\" }, " + json[1..])));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Coordinator_PrivacySection_BindsToValidCoordinatorOptionsSeededFromTheScenario()
    {
        var scenario = Scenario.Load(Write("""
            { "data": { "source": "synthetic" }, "clients": 50, "seed": 9, "rounds": 100,
              "privacy": { "sampleRate": 0.1, "targetEpsilon": 4, "delta": 1e-5, "clip": 0.5, "clipOnAgents": true, "budget": 5,
                           "adaptive": { "targetQuantile": 0.4, "learningRate": 0.3, "countNoiseStddev": 2 } } }
            """));

        var settings = FederationPlan.Coordinator(scenario, _dir);
        var options = new ConfigurationBuilder().AddInMemoryCollection(settings.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value))).Build()
            .GetSection(CoordinatorOptions.Section).Get<CoordinatorOptions>()!;

        var validation = new CoordinatorOptionsValidator().Validate(null, options);
        Assert.True(validation.Succeeded, string.Join("; ", validation.Failures ?? []));
        var p = options.Privacy;
        Assert.True(p.Enabled);
        Assert.Equal((0.1, 4.0, 1e-5, 0.5, true, 5.0, "scenario:9"), (p.SampleRate, p.TargetEpsilon, p.Delta, p.ClipBound, p.ClipOnAgents, p.EpsilonBudget, p.Seed));
        Assert.Equal((true, 0.4, 0.3, 2.0), (p.Adaptive.Enabled, p.Adaptive.TargetQuantile, p.Adaptive.LearningRate, p.Adaptive.CountNoiseStddev));
        Assert.Equal(1.0, options.FractionFit);
        Assert.Equal(1, options.MinFit);
        Assert.Equal(0, options.OverSelect);
        Assert.False(FederationPlan.Coordinator(Smoke(), _dir).ContainsKey("Coordinator:Privacy:Enabled"));
    }

    [Fact]
    public async Task Run_PrivateSmokeWithBudget_StopsCleanlyBeforeTheRoundOverBudget_AndReportsEpsilon()
    {
        // Every client every round (q = 1), z = 2: the budget lies between ε after 2 rounds and after 3.
        var epsilon2 = RdpAccountant.Epsilon(1, 2, 2, 1e-5).Epsilon;
        var epsilon3 = RdpAccountant.Epsilon(1, 2, 3, 1e-5).Epsilon;
        var scenario = Smoke();
        scenario.Rounds = 4;
        scenario.Privacy = new PrivacySection { SampleRate = 1, NoiseMultiplier = 2, Clip = 0.5, Budget = (epsilon2 + epsilon3) / 2 };
        scenario.Validate("test");
        var run = Path.Combine(_dir, "run");
        var output = new StringWriter();

        var code = await ScenarioRunner.RunAsync(scenario, run, output, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.True(code == 0, output.ToString());
        Assert.Contains("the privacy budget stopped the run after 2 of 4 rounds", output.ToString(), StringComparison.Ordinal);
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        Assert.Equal(3, metrics.Length);
        Assert.EndsWith(",epsilon", metrics[0], StringComparison.Ordinal);
        Assert.Equal(epsilon2, double.Parse(metrics[2].Split(',')[^1], CultureInfo.InvariantCulture), 6);
        var privacy = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement.GetProperty("privacy");
        Assert.Equal(epsilon2, privacy.GetProperty("final_epsilon").GetDouble(), 6);
        Assert.True(privacy.GetProperty("stopped_by_budget").GetBoolean());
        Assert.Contains("the budget stopped the run", File.ReadAllText(Path.Combine(run, "report.md")), StringComparison.Ordinal);
        Assert.Contains("Privacy budget reached: round 3", File.ReadAllText(Path.Combine(run, "coordinator.log")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dp-smoke.json")]
    [InlineData("no-dp.json")]
    [InlineData("eps1-fixed.json")]
    [InlineData("eps1-adaptive.json")]
    [InlineData("eps2-fixed.json")]
    [InlineData("eps2-adaptive.json")]
    [InlineData("eps4-fixed.json")]
    [InlineData("eps4-adaptive.json")]
    [InlineData("eps8-fixed.json")]
    [InlineData("eps8-adaptive.json")]
    public void ShippedPrivacyScenarios_ParseAndValidate(string name)
    {
        if (!Directory.Exists(new DataSection().ResolvedDirectory))
        {
            return; // needs Fashion-MNIST, which CI machines may not have
        }

        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "privacy", name));

        Assert.Equal(Path.GetFileNameWithoutExtension(name), scenario.Name);
        if (name.StartsWith("eps", StringComparison.Ordinal))
        {
            Assert.Equal((1000, 100, 0.1, 1e-5, "simple-cnn", "virtual"), (scenario.Clients, scenario.Rounds, scenario.Privacy!.SampleRate, scenario.Privacy.Delta, scenario.Model, scenario.Mode));
            Assert.Equal(double.Parse(name[3..name.IndexOf('-', StringComparison.Ordinal)], CultureInfo.InvariantCulture), scenario.Privacy.TargetEpsilon);
            Assert.Equal(name.Contains("adaptive", StringComparison.Ordinal), scenario.Privacy.Adaptive is not null);
        }
    }
}
