using Federated.Coordinator.State;
using Microsoft.Data.Sqlite;

namespace Federated.Coordinator.Tests.State;

/// <summary>The SQLite store: round trip, migrations, torn and missing checkpoint files, enrolments.</summary>
public sealed class SqliteRoundStateStoreTests : IDisposable
{
    private static readonly IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> Layout = [("w", [2, 2], 0, 4), ("b", [2], 4, 2)];

    private readonly string _directory = Directory.CreateTempSubdirectory("federated-sqlite-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Database => Path.Combine(_directory, "coordinator.db");

    private static RoundCheckpoint Checkpoint(int round, string runId = "run-1", string? ledger = null, double? epsilon = null, List<IReadOnlyDictionary<string, string>>? history = null) => new()
    {
        RunId = runId,
        Round = round,
        Model = "mlp",
        LayoutFingerprint = "fp",
        Global = [round, 2, 3, 4, 5, 6],
        Strategy = "fedadam",
        StrategyState = new Dictionary<string, float[]> { ["m"] = [round, 0.5f] },
        History = history ?? [.. Enumerable.Range(1, round).Select(r => (IReadOnlyDictionary<string, string>)new Dictionary<string, string> { ["round"] = $"{r}", ["ok"] = "true", ["global_sha256"] = $"sha{r}" })],
        PrivacyLedger = ledger,
        Epsilon = epsilon,
    };

    [Fact]
    public void Save_ThenTryLoadInANewStore_RoundTripsModelStrategyHistoryLedgerAndEpsilon()
    {
        using (var store = new SqliteRoundStateStore(_directory, Database))
        {
            store.Save(Checkpoint(1, ledger: "{\"l\":1}", epsilon: 0.5), Layout);
            store.CompleteRound("run-1", 1, new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true", ["wall_s"] = "1.5" });
            store.Save(Checkpoint(2, ledger: "{\"l\":2}", epsilon: 0.75), Layout);
        }

        using var reopened = new SqliteRoundStateStore(_directory, Database);
        var loaded = reopened.TryLoad();

        Assert.NotNull(loaded);
        Assert.Equal(2, loaded.Round);
        Assert.Equal("run-1", loaded.RunId);
        Assert.Equal([2f, 2, 3, 4, 5, 6], loaded.Global);
        Assert.Equal([2f, 0.5f], loaded.StrategyState["m"]);
        Assert.Equal("{\"l\":2}", loaded.PrivacyLedger);
        Assert.Equal(0.75, loaded.Epsilon);
        Assert.Equal(2, loaded.History.Count);
        Assert.Equal("1.5", loaded.History[0]["wall_s"]); // completed row
        Assert.Equal("sha2", loaded.History[1]["global_sha256"]); // provisional row
        Assert.Equal(new (int, double?, bool)[] { (1, 0.5, true), (2, 0.75, false) }, reopened.Rounds("run-1"));
        Assert.Equal(SqliteRoundStateStore.SchemaVersion, reopened.Version);
    }

    [Fact]
    public void TryLoad_EmptyDatabase_ReturnsNull()
    {
        using var store = new SqliteRoundStateStore(_directory, Database);
        Assert.Null(store.TryLoad());
    }

    [Fact]
    public void Open_Version1Database_MigratesToTheLatestAndKeepsItsRows()
    {
        using (var old = new SqliteRoundStateStore(_directory, Database, targetVersion: 1, time: null))
        {
            old.Save(Checkpoint(1, epsilon: 0.25, ledger: "{}"), Layout);
            Assert.Equal(1, old.Version);
            Assert.Throws<SqliteException>(() => old.LoadAgents()); // no agents table before version 2
        }

        using var store = new SqliteRoundStateStore(_directory, Database);

        Assert.Equal(SqliteRoundStateStore.SchemaVersion, store.Version);
        Assert.Equal(1, store.TryLoad()!.Round);
        Assert.Equal(0.25, store.TryLoad()!.Epsilon);
        store.SaveAgent(new AgentEnrolment("a", "hash", [1, 2], 10, 20));
        Assert.Single(store.LoadAgents());
    }

    [Fact]
    public void Open_DatabaseOfANewerSchema_IsRefusedWithAMessageNamingTheVersion()
    {
        using (new SqliteRoundStateStore(_directory, Database))
        {
        }

        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE schema_version SET version = 99;";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<InvalidDataException>(() => new SqliteRoundStateStore(_directory, Database));
        Assert.Contains("schema version 99", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryLoad_TornTemporaryCheckpointFile_IsIgnoredAndDeleted()
    {
        using var store = new SqliteRoundStateStore(_directory, Database);
        store.Save(Checkpoint(1), Layout);
        store.Save(Checkpoint(2), Layout);
        // A crash in the middle of writing round 3's checkpoint: half a file under the temporary name.
        var torn = Path.Combine(_directory, ".round-000003.safetensors.0123456789abcdef.tmp");
        File.WriteAllBytes(torn, [0x40, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'"']);

        var loaded = store.TryLoad();

        Assert.Equal(2, loaded!.Round);
        Assert.False(File.Exists(torn));
    }

    [Fact]
    public void TryLoad_CheckpointFileWithoutItsRow_ResumesAtTheLastCommittedRound()
    {
        using var store = new SqliteRoundStateStore(_directory, Database);
        store.Save(Checkpoint(1), Layout);
        // A crash after round 2's file was durable but before its row was committed.
        CheckpointFile.Write(Path.Combine(_directory, CheckpointFile.NameOf(2)), Checkpoint(2), Layout);

        Assert.Equal(1, store.TryLoad()!.Round);
    }

    [Fact]
    public void TryLoad_LatestCheckpointFileDamaged_FallsBackToThePreviousButKeepsTheLatestLedger()
    {
        using var store = new SqliteRoundStateStore(_directory, Database);
        store.Save(Checkpoint(1, ledger: "{\"steps\":1}", epsilon: 1), Layout);
        store.Save(Checkpoint(2, ledger: "{\"steps\":2}", epsilon: 2), Layout);
        File.WriteAllBytes(Path.Combine(_directory, CheckpointFile.NameOf(2)), [1, 2, 3]);

        var loaded = store.TryLoad();

        Assert.Equal(1, loaded!.Round);
        Assert.Single(loaded.History);
        Assert.Equal("{\"steps\":2}", loaded.PrivacyLedger); // ε is never under-counted
        Assert.Equal(2, loaded.Epsilon);
    }

    [Fact]
    public void TryLoad_NoCheckpointFileLeft_ThrowsInvalidData()
    {
        using var store = new SqliteRoundStateStore(_directory, Database);
        store.Save(Checkpoint(1), Layout);
        File.Delete(Path.Combine(_directory, CheckpointFile.NameOf(1)));

        Assert.Throws<InvalidDataException>(() => store.TryLoad());
    }

    [Fact]
    public void Save_ManyRounds_KeepsTheTwoNewestCheckpointFiles()
    {
        using var store = new SqliteRoundStateStore(_directory, Database);
        for (var round = 1; round <= 4; round++)
        {
            store.Save(Checkpoint(round), Layout);
        }

        Assert.Equal(["round-000003.safetensors", "round-000004.safetensors"],
            Directory.EnumerateFiles(_directory, "round-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(4, store.Rounds("run-1").Count);
    }

    [Fact]
    public void SaveAgent_ReEnrolment_KeepsTheFirstEnrolmentTimeAndTheNewToken()
    {
        using (var store = new SqliteRoundStateStore(_directory, Database))
        {
            store.SaveAgent(new AgentEnrolment("a", "h1", [1], 100, 100));
            store.SaveAgent(new AgentEnrolment("b", "h2", [2], 150, 150));
            store.SaveAgent(new AgentEnrolment("a", "h3", [3], 200, 200));
        }

        using var reopened = new SqliteRoundStateStore(_directory, Database);
        var agents = reopened.LoadAgents();

        Assert.Equal(2, agents.Count);
        Assert.Equal("h3", agents[0].TokenSha256);
        Assert.Equal([3], agents[0].Capabilities);
        Assert.Equal(100, agents[0].EnrolledUnixMs);
        Assert.Equal(200, agents[0].LastEnrolledUnixMs);
    }

    [Fact]
    public void FileStore_SaveAgent_RoundTripsThroughAgentsJson()
    {
        var store = new FileRoundStateStore(_directory);
        store.SaveAgent(new AgentEnrolment("a", "h1", [1, 2], 100, 100));
        store.SaveAgent(new AgentEnrolment("a", "h2", [3], 100, 200));

        var agents = new FileRoundStateStore(_directory).LoadAgents();

        Assert.Equal("h2", Assert.Single(agents).TokenSha256);
    }
}
