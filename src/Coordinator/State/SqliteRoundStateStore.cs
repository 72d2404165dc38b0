using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Federated.Coordinator.State;

/// <summary>
/// The default store: an embedded SQLite database (<c>coordinator.db</c> in the state directory) with the runs, one
/// row per completed round (its metrics and ε), the privacy ledger after every round and the agents' enrolments; the
/// model and strategy state stay in checkpoint files beside it (<see cref="CheckpointFile"/>, safetensors, readable by
/// PyTorch).
/// <para>
/// Order of a save: the checkpoint file is made durable first (temporary file, fsync, rename, directory fsync), then
/// one transaction commits the round row and the ledger. Resume picks the latest round that has both; a file without a
/// row (a crash between the two) is simply overwritten when the round runs again.
/// </para>
/// <para>
/// The database runs in WAL mode with <c>synchronous=FULL</c>: every commit is fsynced before <see cref="Save"/>
/// returns. <c>NORMAL</c> would survive a process crash (SIGKILL) too, but a power cut could roll back the last
/// commits — a round whose model had already been sent to agents would lose its ε and the run would under-count its
/// privacy spending. One fsync per round costs milliseconds.
/// </para>
/// <para>
/// The schema carries its version in <c>schema_version</c>; <see cref="Migrations"/> brings an older database up to
/// date in one transaction per step, and a database from a newer coordinator is refused.
/// </para>
/// </summary>
internal sealed class SqliteRoundStateStore : IRoundStateStore, IDisposable
{
    /// <summary>The schema migrations, in order: migration i brings the schema from version i to i + 1.</summary>
    internal static readonly string[] Migrations =
    [
        // 1: runs, completed rounds with their metrics and ε, and the privacy ledger after each round.
        """
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            layout TEXT NOT NULL,
            strategy TEXT NOT NULL,
            created_unix_ms INTEGER NOT NULL);
        CREATE TABLE rounds (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            round INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            global_sha256 TEXT NOT NULL,
            checkpoint_file TEXT NOT NULL,
            epsilon REAL,
            metrics TEXT NOT NULL,
            complete INTEGER NOT NULL DEFAULT 0,
            committed_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (run_id, round));
        CREATE TABLE privacy_ledger (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            round INTEGER NOT NULL,
            epsilon REAL,
            ledger TEXT NOT NULL,
            PRIMARY KEY (run_id, round));
        """,

        // 2: agents' enrolments (the token's SHA-256, never the token).
        """
        CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY,
            token_sha256 TEXT NOT NULL,
            capabilities BLOB NOT NULL,
            enrolled_unix_ms INTEGER NOT NULL,
            last_enrolled_unix_ms INTEGER NOT NULL);
        """,
    ];

    /// <summary>The schema version this coordinator writes.</summary>
    public static int SchemaVersion => Migrations.Length;

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;

    /// <summary>Opens (creating or migrating) the database at <paramref name="databasePath"/>; checkpoints go to <paramref name="directory"/>.</summary>
    /// <exception cref="InvalidDataException">The database is from a newer coordinator, or not a coordinator database.</exception>
    public SqliteRoundStateStore(string directory, string databasePath, TimeProvider? time = null)
        : this(directory, databasePath, SchemaVersion, time)
    {
    }

    /// <summary>Opens the database and migrates it to <paramref name="targetVersion"/> (tests build old schemas with it).</summary>
    internal SqliteRoundStateStore(string directory, string databasePath, int targetVersion, TimeProvider? time)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        Directory = directory;
        DatabasePath = Path.GetFullPath(databasePath);
        _time = time ?? TimeProvider.System;
        System.IO.Directory.CreateDirectory(Directory);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(DatabasePath)!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false, Mode = SqliteOpenMode.ReadWriteCreate }.ToString());
        try
        {
            _connection.Open();
            Execute("PRAGMA journal_mode=WAL;");
            Execute("PRAGMA synchronous=FULL;");
            Execute("PRAGMA foreign_keys=ON;");
            Execute("PRAGMA busy_timeout=5000;");
            Migrate(targetVersion);
        }
        catch (SqliteException e)
        {
            _connection.Dispose();
            throw new InvalidDataException($"'{DatabasePath}' is not a usable coordinator database: {e.Message}", e);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>The database file.</summary>
    public string DatabasePath { get; }

    /// <summary>The schema version of the open database.</summary>
    public int Version
    {
        get
        {
            lock (_gate)
            {
                return ReadVersion();
            }
        }
    }

    private void Migrate(int targetVersion)
    {
        Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);");
        var version = ReadVersion();
        if (version > SchemaVersion)
        {
            throw new InvalidDataException(
                $"'{DatabasePath}' has schema version {version}, newer than this coordinator's {SchemaVersion}: run a newer coordinator, or set Coordinator:Store=file / another Coordinator:DatabaseFile.");
        }

        for (var v = version; v < targetVersion; v++)
        {
            using var transaction = _connection.BeginTransaction();
            using (var command = _connection.CreateCommand())
            {
                command.Transaction = transaction;
                command.CommandText = Migrations[v] + (v == 0 ? "INSERT INTO schema_version (version) VALUES (1);" : $"UPDATE schema_version SET version = {v + 1};");
                command.ExecuteNonQuery();
            }

            transaction.Commit();
        }
    }

    private int ReadVersion()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT version FROM schema_version LIMIT 1;";
        return command.ExecuteScalar() is long v ? (int)v : 0;
    }

    /// <inheritdoc />
    public void Save(RoundCheckpoint checkpoint, IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> layout)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(layout);
        var fileName = CheckpointFile.NameOf(checkpoint.Round);
        CheckpointFile.Write(Path.Combine(Directory, fileName), checkpoint, layout);

        var row = checkpoint.History.Count > 0 ? checkpoint.History[^1] : new Dictionary<string, string>();
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            Execute(transaction, "INSERT OR IGNORE INTO runs (run_id, model, layout, strategy, created_unix_ms) VALUES ($run, $model, $layout, $strategy, $now);",
                ("$run", checkpoint.RunId), ("$model", checkpoint.Model), ("$layout", checkpoint.LayoutFingerprint), ("$strategy", checkpoint.Strategy), ("$now", now));
            Execute(transaction,
                "INSERT OR REPLACE INTO rounds (run_id, round, ok, global_sha256, checkpoint_file, epsilon, metrics, complete, committed_unix_ms) " +
                "VALUES ($run, $round, $ok, $sha, $file, $eps, $metrics, 0, $now);",
                ("$run", checkpoint.RunId), ("$round", checkpoint.Round), ("$ok", row.GetValueOrDefault("ok") == "false" ? 0 : 1),
                ("$sha", row.GetValueOrDefault("global_sha256") ?? ""), ("$file", fileName), ("$eps", checkpoint.Epsilon),
                ("$metrics", JsonSerializer.Serialize(row)), ("$now", now));
            if (checkpoint.PrivacyLedger is { } ledger)
            {
                Execute(transaction, "INSERT OR REPLACE INTO privacy_ledger (run_id, round, epsilon, ledger) VALUES ($run, $round, $eps, $ledger);",
                    ("$run", checkpoint.RunId), ("$round", checkpoint.Round), ("$eps", checkpoint.Epsilon), ("$ledger", ledger));
            }

            transaction.Commit();
        }

        // Only now, with the new round committed, may the older files go.
        CheckpointFile.Prune(Directory, keep: 2);
    }

    /// <inheritdoc />
    public void CompleteRound(string runId, int round, IReadOnlyDictionary<string, string> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            Execute(transaction, "UPDATE rounds SET metrics = $metrics, complete = 1 WHERE run_id = $run AND round = $round;",
                ("$metrics", JsonSerializer.Serialize(metrics)), ("$run", runId), ("$round", round));
            transaction.Commit();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The latest run's latest round whose checkpoint file reads back. Should that file be missing or damaged (only
    /// outside interference can do that: the row is committed after the file is durable), the run falls back to the
    /// previous round that has one and later rounds run again; the privacy ledger is the latest committed whatever the
    /// fallback, so ε is never under-counted.
    /// </remarks>
    public RoundCheckpoint? TryLoad()
    {
        CheckpointFile.DeleteTemporaryFiles(Directory);
        string runId;
        var rounds = new List<(int Round, string File, IReadOnlyDictionary<string, string> Metrics)>();
        string? ledger;
        double? epsilon;
        lock (_gate)
        {
            using (var command = _connection.CreateCommand())
            {
                command.CommandText = "SELECT run_id FROM runs ORDER BY created_unix_ms DESC, rowid DESC LIMIT 1;";
                if (command.ExecuteScalar() is not string id)
                {
                    return null;
                }

                runId = id;
            }

            using (var command = _connection.CreateCommand())
            {
                command.CommandText = "SELECT round, checkpoint_file, metrics FROM rounds WHERE run_id = $run ORDER BY round;";
                command.Parameters.AddWithValue("$run", runId);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    rounds.Add((reader.GetInt32(0), reader.GetString(1), ParseMetrics(reader.GetString(2))));
                }
            }

            using (var command = _connection.CreateCommand())
            {
                command.CommandText = "SELECT ledger, epsilon FROM privacy_ledger WHERE run_id = $run ORDER BY round DESC LIMIT 1;";
                command.Parameters.AddWithValue("$run", runId);
                using var reader = command.ExecuteReader();
                (ledger, epsilon) = reader.Read() ? (reader.GetString(0), reader.IsDBNull(1) ? (double?)null : reader.GetDouble(1)) : (null, null);
            }
        }

        if (rounds.Count == 0)
        {
            return null;
        }

        var problems = new List<string>();
        for (var i = rounds.Count - 1; i >= 0; i--)
        {
            var path = Path.Combine(Directory, rounds[i].File);
            RoundCheckpoint file;
            try
            {
                file = CheckpointFile.Read(path);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or FormatException)
            {
                problems.Add($"{rounds[i].File}: {e.Message}");
                continue;
            }

            if (file.RunId != runId || file.Round != rounds[i].Round)
            {
                problems.Add($"{rounds[i].File} belongs to run {file.RunId} round {file.Round}");
                continue;
            }

            return new RoundCheckpoint
            {
                RunId = runId,
                Round = file.Round,
                Model = file.Model,
                LayoutFingerprint = file.LayoutFingerprint,
                Global = file.Global,
                Strategy = file.Strategy,
                StrategyState = file.StrategyState,
                History = [.. rounds.Take(i + 1).Select(r => r.Metrics)],
                PrivacyLedger = ledger ?? file.PrivacyLedger,
                Epsilon = epsilon,
            };
        }

        throw new InvalidDataException(
            $"Run {runId} in '{DatabasePath}' has {rounds.Count} completed rounds but no readable checkpoint file in '{Directory}' ({string.Join("; ", problems)}); move the state away or set Coordinator:Resume=false.");
    }

    /// <inheritdoc />
    public void SaveAgent(AgentEnrolment enrolment)
    {
        ArgumentNullException.ThrowIfNull(enrolment);
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            Execute(transaction,
                "INSERT INTO agents (agent_id, token_sha256, capabilities, enrolled_unix_ms, last_enrolled_unix_ms) VALUES ($id, $token, $caps, $first, $last) " +
                "ON CONFLICT (agent_id) DO UPDATE SET token_sha256 = excluded.token_sha256, capabilities = excluded.capabilities, last_enrolled_unix_ms = excluded.last_enrolled_unix_ms;",
                ("$id", enrolment.AgentId), ("$token", enrolment.TokenSha256), ("$caps", enrolment.Capabilities), ("$first", enrolment.EnrolledUnixMs), ("$last", enrolment.LastEnrolledUnixMs));
            transaction.Commit();
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<AgentEnrolment> LoadAgents()
    {
        var agents = new List<AgentEnrolment>();
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT agent_id, token_sha256, capabilities, enrolled_unix_ms, last_enrolled_unix_ms FROM agents ORDER BY agent_id;";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                agents.Add(new AgentEnrolment(reader.GetString(0), reader.GetString(1), (byte[])reader.GetValue(2), reader.GetInt64(3), reader.GetInt64(4)));
            }
        }

        return agents;
    }

    /// <summary>The completed rounds of <paramref name="runId"/>: round, ε and whether the metrics row is complete (for reports and tests).</summary>
    public IReadOnlyList<(int Round, double? Epsilon, bool Complete)> Rounds(string runId)
    {
        var rows = new List<(int, double?, bool)>();
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT round, epsilon, complete FROM rounds WHERE run_id = $run ORDER BY round;";
            command.Parameters.AddWithValue("$run", runId);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                rows.Add((reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetDouble(1), reader.GetInt64(2) != 0));
            }
        }

        return rows;
    }

    /// <inheritdoc />
    public void Dispose() => _connection.Dispose();

    private static Dictionary<string, string> ParseMetrics(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"A round's metrics row is unreadable: {e.Message}", e);
        }
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private void Execute(SqliteTransaction transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        command.ExecuteNonQuery();
    }
}
