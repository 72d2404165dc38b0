using System.Globalization;
using Federated.Coordinator.State;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>
/// SecAgg+ rounds end to end: the real coordinator and agent hosts in this process over gRPC, the four stages on the
/// agents' sessions, with simulated dropouts and a forged key advertisement.
/// </summary>
public sealed class SecureAggregationRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-secagg-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The smoke scenario with <paramref name="clients"/> agents, deterministic training, all of them sampled and needed.</summary>
    private static Scenario Smoke(int clients, int rounds, SecureAggregationSection? secure)
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Clients = clients;
        scenario.MinResults = 1;
        scenario.Rounds = rounds;
        scenario.Deterministic = true;
        scenario.SecureAggregation = secure;
        scenario.Validate("test");
        return scenario;
    }

    private async Task<string> RunAsync(Scenario scenario, string name)
    {
        var run = Path.Combine(_dir, name);
        var code = await ScenarioRunner.RunAsync(scenario, run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(5));
        Assert.Equal(0, code);
        return run;
    }

    private static List<Dictionary<string, string>> Rows(string run)
    {
        var lines = File.ReadAllLines(Path.Combine(run, "coordinator", "rounds.csv"));
        var header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal)).ToList();
    }

    private static float[] Global(string run)
    {
        var directory = Path.Combine(run, "coordinator");
        using var store = new SqliteRoundStateStore(directory, Path.Combine(directory, "coordinator.db"));
        return store.TryLoad()?.Global ?? throw new InvalidOperationException($"No checkpoint in {directory}.");
    }

    private static string Log(string run) =>
        string.Join('\n', Directory.EnumerateFiles(run, "*.log", SearchOption.AllDirectories).Select(File.ReadAllText));

    [Fact]
    public async Task Round_FourAgents_SameModelAsPlainFedAvgWithinTheQuantisationStep()
    {
        // A 16-bit ring makes the step visible: L = ⌊(2¹⁶ − 1) / 4⌋ levels over [−c, c].
        var secure = new SecureAggregationSection { RingBits = 16, ClipRange = 1 };
        var plain = Global(await RunAsync(Smoke(4, 1, null), "plain"));
        var run = await RunAsync(Smoke(4, 1, secure), "secure");
        var masked = Global(run);

        var row = Assert.Single(Rows(run));
        Assert.Equal(("true", "4", "4", "0"), (row["ok"], row["results"], row["secagg_survivors"], row["secagg_dropped"]));
        var step = 2.0 * secure.ClipRange / ((ushort.MaxValue) / 4);
        Assert.Equal(plain.Length, masked.Length);
        var worst = plain.Zip(masked).Max(p => Math.Abs((double)p.First - p.Second));

        // Each agent's rounding error is below one step; the weighted mean of four (equal weights) is too. A float32
        // ulp of the weights (≤ 1.2e-7 for |w| < 1) is the only other difference.
        Assert.True(worst <= step + 1e-6, $"largest difference {worst:G4}, quantisation step {step:G4}");
    }

    [Fact]
    public async Task Round_DropoutAfterShareKeys_IsRecoveredAndEqualsTheRoundWithoutThatAgent()
    {
        // Agent 1 shares keys and then never sends its masked input: its pairwise masks are in the others' inputs and
        // must be reconstructed from its neighbours' shares of its masking key. The same agent excluded at the first
        // stage (a forged signature: it never shares, so nobody masks with it) gives the same sum of the other four.
        var recovered = new SecureAggregationSection
        {
            RingBits = 32, Degree = 4, Threshold = 3, MaskedInputSeconds = 20,
            Faults = [new SecureAggregationFault { Stage = "input", Agents = [1], Round = 1 }],
        };
        var excluded = new SecureAggregationSection
        {
            RingBits = 32, Degree = 4, Threshold = 3,
            Faults = [new SecureAggregationFault { Stage = "bad-signature", Agents = [1], Round = 1 }],
        };

        var dropRun = await RunAsync(Smoke(5, 1, recovered), "dropout");
        var badRun = await RunAsync(Smoke(5, 1, excluded), "forged");

        var drop = Assert.Single(Rows(dropRun));
        Assert.Equal(("true", "4", "4", "1"), (drop["ok"], drop["results"], drop["secagg_survivors"], drop["secagg_dropped"]));
        var bad = Assert.Single(Rows(badRun));
        Assert.Equal(("true", "4", "4", "4"), (bad["ok"], bad["results"], bad["secagg_advertised"], bad["secagg_survivors"]));
        Assert.Contains("agent-0001 excluded from secure aggregation: its key advertisement's signature does not verify", Log(badRun), StringComparison.Ordinal);
        var step = 2.0 / (uint.MaxValue / 5);
        var worst = Global(dropRun).Zip(Global(badRun)).Max(p => Math.Abs((double)p.First - p.Second));
        Assert.True(worst <= (2 * step) + 1e-6, $"largest difference {worst:G4}");
    }

    [Fact]
    public async Task Round_TooManyDropouts_FailsCleanlyAndTheNextRoundRuns()
    {
        // Five agents, complete graph, t = 3: three silent after sharing keys leave each survivor one live neighbour.
        var secure = new SecureAggregationSection
        {
            Degree = 4, Threshold = 3, MaskedInputSeconds = 20,
            Faults = [new SecureAggregationFault { Stage = "input", Agents = [0, 1, 2], Round = 1 }],
        };

        var run = await RunAsync(Smoke(5, 2, secure), "too-many");

        var rows = Rows(run);
        Assert.Equal(2, rows.Count);
        Assert.Equal(("false", "0", "2"), (rows[0]["ok"], rows[0]["results"], rows[0]["secagg_survivors"]));
        Assert.Contains("fewer than the threshold 3", rows[0]["secagg_failure"], StringComparison.Ordinal);
        Assert.Equal(("true", "5", "5"), (rows[1]["ok"], rows[1]["results"], rows[1]["secagg_survivors"]));
        Assert.NotEqual(rows[0]["global_sha256"], rows[1]["global_sha256"]);
    }

    [Fact]
    public async Task Rounds_DistributedNoise_EpsilonPerRoundAndTheLedgerInTheCheckpoint()
    {
        var secure = new SecureAggregationSection { Noise = new SecureAggregationNoise { Multiplier = 1.0, L2Clip = 1.0 } };

        var run = await RunAsync(Smoke(4, 2, secure), "noise");

        var rows = Rows(run);
        Assert.All(rows, r => Assert.Equal(("true", "4"), (r["ok"], r["results"])));
        var epsilons = rows.Select(r => double.Parse(r["epsilon"], CultureInfo.InvariantCulture)).ToList();
        Assert.True(epsilons[0] > 0 && epsilons[1] > epsilons[0], $"ε per round: {string.Join(", ", epsilons)}");
        Assert.Equal("3", rows[0]["secagg_min_survivors"]);
        var directory = Path.Combine(run, "coordinator");
        using var store = new SqliteRoundStateStore(directory, Path.Combine(directory, "coordinator.db"));
        var ledger = Learning.Privacy.PrivacyLedger.FromJson(store.TryLoad()!.PrivacyLedger!);
        var entry = Assert.Single(ledger.Entries);
        Assert.Equal(2, entry.Steps);
        Assert.NotNull(entry.SkellamVariance);
        Assert.Equal(epsilons[1], ledger.Spent(1e-5).Epsilon, 6);
    }

    [Fact]
    public async Task Rounds_NoiseTargetEpsilon_TheRunSpendsTheTarget()
    {
        var secure = new SecureAggregationSection { Noise = new SecureAggregationNoise { TargetEpsilon = 20, L2Clip = 1.0 } };

        var run = await RunAsync(Smoke(4, 2, secure), "target");

        var epsilon = double.Parse(Rows(run)[^1]["epsilon"], CultureInfo.InvariantCulture);
        Assert.InRange(epsilon, 19.9, 20.0);
    }

    [Fact]
    public async Task Round_Buckets_EachBucketUnmaskedAndCombinedByTheMedian()
    {
        var secure = new SecureAggregationSection { BucketSize = 2, BucketAggregator = "median" };

        var run = await RunAsync(Smoke(6, 1, secure), "buckets");

        var row = Assert.Single(Rows(run));
        Assert.Equal(("true", "6", "3", "0"), (row["ok"], row["results"], row["secagg_buckets"], row["secagg_buckets_failed"]));
        Assert.All(Global(run), v => Assert.True(float.IsFinite(v)));
    }
}
