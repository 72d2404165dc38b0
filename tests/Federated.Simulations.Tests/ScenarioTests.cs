using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

public sealed class ScenarioTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-scenario-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"s{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static readonly System.Text.Json.JsonSerializerOptions ReadOptions = new()
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    };

    private static string Shipped(string name) => Path.Combine(AppContext.BaseDirectory, "scenarios", name);

    [Fact]
    public void Load_UnknownKey_NamesIt()
    {
        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(Write("""{ "name": "x", "clientz": 3 }""")));

        Assert.Contains("clientz", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "clients": 0 }""", "'clients'")]
    [InlineData("""{ "clients": 4, "sampledPerRound": 9 }""", "'sampledPerRound'")]
    [InlineData("""{ "model": "vgg" }""", "'model'")]
    [InlineData("""{ "training": { "momentum": 1.5 } }""", "'training.momentum'")]
    [InlineData("""{ "data": { "source": "synthetic", "partition": "dirichlet:-1" } }""", "'data.partition'")]
    [InlineData("""{ "strategy": { "name": "fedfoo" } }""", "'strategy'")]
    [InlineData("""{ "mode": "cloud" }""", "'mode'")]
    [InlineData("""{ "mode": "virtual", "virtual": { "poolSize": 0 } }""", "'virtual.poolSize'")]
    [InlineData("""{ "mode": "virtual", "federatedEvaluationFraction": 0.5 }""", "'federatedEvaluationFraction'")]
    [InlineData("""{ "compression": { "uplink": "q9" } }""", "'compression.uplink'")]
    [InlineData("""{ "compression": { "downlink": "topk" } }""", "'compression.downlink'")]
    [InlineData("""{ "compression": { "uplink": "randk:ratio=0.1" } }""", "'compression.errorFeedback'")]
    [InlineData("""{ "compression": { "codec": "q8" } }""", "codec")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "ringBits": 40 } }""", "'secureAggregation.ringBits' must be between 2 and 32")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "degree": 4, "threshold": 5 } }""", "'secureAggregation.threshold' (5) cannot exceed")]
    [InlineData("""{ "clients": 8, "secureAggregation": { "degree": 3 } }""", "'secureAggregation.degree' must be even")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "unmaskSeconds": 0 } }""", "'secureAggregation.unmaskSeconds' must be positive")]
    [InlineData("""{ "clients": 6, "compression": { "uplink": "q8" }, "secureAggregation": { } }""", "'compression.uplink' 'q8' cannot be combined with 'secureAggregation'")]
    [InlineData("""{ "clients": 6, "strategy": { "name": "fedavg", "options": { "aggregator": "median" } }, "secureAggregation": { } }""", "'strategy.options.aggregator' cannot be combined")]
    [InlineData("""{ "clients": 6, "strategy": { "name": "scaffold" }, "secureAggregation": { } }""", "'strategy.name' 'scaffold' cannot be combined")]
    [InlineData("""{ "clients": 6, "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1 }, "secureAggregation": { } }""", "'privacy' cannot be combined")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "faults": [ { "stage": "later", "agents": [1] } ] } }""", "'secureAggregation.faults[0].stage'")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "faults": [ { "stage": "input", "agents": [6] } ] } }""", "'secureAggregation.faults[0].agents' must list agent indices between 0 and 5")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "faults": [ { "stage": "input", "agents": [1] }, { "stage": "keys", "agents": [1] } ] } }""", "agent 1 already has a fault")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "bucketSize": 1 } }""", "'secureAggregation.bucketSize' must be 0 (one bucket) or at least 2")]
    [InlineData("""{ "clients": 10, "secureAggregation": { "bucketSize": 4, "degree": 3 } }""", "'secureAggregation.degree' must be even (a Harary graph) or at least the agents per bucket − 1 = 4")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "bucketSize": 3, "bucketAggregator": "mode" } }""", "'secureAggregation.bucketAggregator' 'mode' is not a robust rule")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "noise": { "multiplier": 1 } } }""", "'secureAggregation.noise.l2Clip' must be positive")]
    [InlineData("""{ "clients": 6, "secureAggregation": { "ringBits": 4, "noise": { "multiplier": 1, "l2Clip": 1 } } }""", "'secureAggregation.noise' cannot fit the ring")]
    [InlineData("""{ "clients": 6, "privacy": { "sampleRate": 0.5, "noiseMultiplier": 1 }, "secureAggregation": { } }""", "set 'secureAggregation.noise'")]
    public void Load_BadValue_NamesTheKey(string json, string key)
    {
        // Synthetic data unless the case is about data, so that no data set is needed.
        var withData = json.Contains("\"data\"", StringComparison.Ordinal) ? json : "{ \"data\": { \"source\": \"synthetic\" }, " + json[1..];

        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(Write(withData)));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingDataSet_SaysHowToGetIt()
    {
        var error = Assert.Throws<ScenarioException>(() => Scenario.Load(Write("""{ "data": { "source": "idx", "directory": "/nonexistent/fmnist" } }""")));

        Assert.Contains("data.directory", error.Message, StringComparison.Ordinal);
        Assert.Contains("dataset-fashion-mnist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFileAndBadJson_AreClearErrors()
    {
        Assert.Contains("does not exist", Assert.Throws<ScenarioException>(() => Scenario.Load(Path.Combine(_dir, "none.json"))).Message, StringComparison.Ordinal);
        Assert.Throws<ScenarioException>(() => Scenario.Load(Write("{ \"clients\": ")));
        Assert.Contains("$.clients", Assert.Throws<ScenarioException>(() => Scenario.Load(Write("""{ "clients": "many" }"""))).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("smoke.json")]
    [InlineData("default.json")]
    [InlineData("reference.json")]
    [InlineData("virtual-smoke.json")]
    [InlineData("virtual-1000.json")]
    public void ShippedScenarios_ParseAndValidate(string name)
    {
        if (name is not ("smoke.json" or "virtual-smoke.json") && !Directory.Exists(new DataSection().ResolvedDirectory))
        {
            return; // needs Fashion-MNIST, which CI machines may not have; smoke.json never does.
        }

        var scenario = Scenario.Load(Shipped(name));

        Assert.Equal(Path.GetFileNameWithoutExtension(name), scenario.Name);
    }

    [Fact]
    public void CompressionScenarios_AreTheReferenceWithOneCodecEach()
    {
        var reference = System.Text.Json.JsonSerializer.Deserialize<Scenario>(File.ReadAllText(Shipped("reference.json")), ReadOptions)!;
        var files = Directory.GetFiles(Shipped("compression"), "*.json");
        var uplinks = new HashSet<string>(StringComparer.Ordinal);

        foreach (var file in files)
        {
            var scenario = System.Text.Json.JsonSerializer.Deserialize<Scenario>(File.ReadAllText(file), ReadOptions)!;
            var compression = scenario.Compression;
            scenario.Compression = new CompressionSection();
            scenario.Name = reference.Name;

            Assert.Equal(reference.ToJson(), scenario.ToJson());
            Assert.True(compression.ErrorFeedback, file);
            Assert.Empty(new Coordinator.Hosting.CompressionSettings { Uplink = compression.Uplink, Downlink = compression.Downlink }.Validate(n => n));
            uplinks.Add(compression.Uplink);
        }

        Assert.Superset(new HashSet<string>(["none", "fp16", "q8", "q4", "sign:block=512", "topk:ratio=0.01+q8", "randk:ratio=0.01,scaled=false+q8"]), uplinks);
    }

    [Fact]
    public void Compression_IsPassedToTheCoordinator()
    {
        var scenario = new Scenario { Compression = { Uplink = "topk:ratio=0.01+q8", Downlink = "q8", ErrorFeedback = false } };

        var settings = FederationPlan.Coordinator(scenario, _dir);

        Assert.Equal("topk:ratio=0.01+q8", settings["Coordinator:Compression:Uplink"]);
        Assert.Equal("q8", settings["Coordinator:Compression:Downlink"]);
        Assert.Equal("false", settings["Coordinator:Compression:ErrorFeedback"]);
    }

    [Fact]
    public void Reference_HasTheAgreedSettings()
    {
        var json = File.ReadAllText(Shipped("reference.json"));
        var scenario = System.Text.Json.JsonSerializer.Deserialize<Scenario>(json, ReadOptions)!;

        Assert.Equal((10, 10, "dirichlet:0.5", "simple-cnn", "sgd", 0.01, 0.9, 64, 1, 30), (scenario.Clients, scenario.ResolvedSampled, scenario.Data.Partition, scenario.Model,
            scenario.Training.Optimizer, scenario.Training.LearningRate, scenario.Training.Momentum, scenario.Training.BatchSize, scenario.Training.Epochs, scenario.Rounds));
    }
}
