using System.Globalization;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>The smoke scenario with compressed transfers, end to end through the real coordinator and agents.</summary>
public sealed class CompressionRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-compression-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<List<Dictionary<string, double>>> RunAsync(string name, string uplink, string downlink)
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Rounds = 3;
        scenario.Compression = new CompressionSection { Uplink = uplink, Downlink = downlink };
        var run = Path.Combine(_dir, name);

        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, code);
        var lines = File.ReadAllLines(Path.Combine(run, "coordinator", "rounds.csv"));
        var header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(','))
            .Where(p => double.TryParse(p.Second, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            .ToDictionary(p => p.First, p => double.Parse(p.Second, NumberStyles.Float, CultureInfo.InvariantCulture))).ToList();
    }

    [Fact]
    public async Task Run_WithCodecs_CompletesAndMovesFewerBytes()
    {
        var dense = await RunAsync("dense", "none", "none");
        var compressed = await RunAsync("compressed", "topk:ratio=0.01+q8", "q8");

        Assert.Equal(3, compressed.Count);
        Assert.All(compressed, r => Assert.Equal(3, r["results"]));
        Assert.All(compressed, r => Assert.Equal(0, r["failures"]));
        foreach (var (d, c) in dense.Zip(compressed))
        {
            // Top-1 % with 8-bit values: well under a tenth of the dense upload (payload and wire alike).
            Assert.True(c["up_payload_bytes_per_agent"] * 10 < d["up_payload_bytes_per_agent"], $"up {c["up_payload_bytes_per_agent"]} vs dense {d["up_payload_bytes_per_agent"]}");
            Assert.True(c["up_wire_bytes_per_agent"] * 10 < d["up_wire_bytes_per_agent"]);
        }

        // Round 1 sends everyone the full model; from round 2 on, agents get q8 deltas against the model they hold.
        Assert.Equal(dense[0]["down_payload_bytes_per_agent"], compressed[0]["down_payload_bytes_per_agent"], 0.05 * dense[0]["down_payload_bytes_per_agent"]);
        Assert.True(compressed[2]["down_payload_bytes_per_agent"] * 3 < dense[2]["down_payload_bytes_per_agent"], $"down {compressed[2]["down_payload_bytes_per_agent"]} vs dense {dense[2]["down_payload_bytes_per_agent"]}");
        Assert.True(compressed[2]["test_accuracy"] > 0.4, $"accuracy {compressed[2]["test_accuracy"]} (4 classes)"); // it still learns
    }
}
