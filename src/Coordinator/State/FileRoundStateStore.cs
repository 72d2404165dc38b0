using System.Text.Json;

namespace Federated.Coordinator.State;

/// <summary>
/// A directory of checkpoint files (see <see cref="CheckpointFile"/>): <c>round-000003.safetensors</c> holds the global
/// model, the strategy state, the round history and (for a differentially private run) the privacy ledger;
/// <c>CURRENT</c> names the latest; <c>enrolments.json</c> the enrolments (<c>agents.json</c> is the key registry). Every file is written to a temporary name, synced
/// and renamed, so a crash at any point leaves the previous state loadable. The two newest checkpoints are kept.
/// Selected with <c>Coordinator:Store=file</c>; the default is <see cref="SqliteRoundStateStore"/>.
/// </summary>
internal sealed class FileRoundStateStore(string directory) : IRoundStateStore
{
    private const string CurrentFile = "CURRENT";
    private const string AgentsFile = "enrolments.json";
    private readonly Lock _agentsGate = new();

    /// <summary>The directory.</summary>
    public string Directory { get; } = directory;

    /// <inheritdoc />
    public void Save(RoundCheckpoint checkpoint, IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> layout)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(layout);
        System.IO.Directory.CreateDirectory(Directory);
        var fileName = CheckpointFile.NameOf(checkpoint.Round);
        CheckpointFile.Write(Path.Combine(Directory, fileName), checkpoint, layout);
        WriteDurably(Path.Combine(Directory, CurrentFile), fileName);
        CheckpointFile.Prune(Directory, keep: 2);
    }

    /// <inheritdoc />
    /// <remarks>The file store keeps the complete row in the next checkpoint's history (and rounds.csv); nothing to do here.</remarks>
    public void CompleteRound(string runId, int round, IReadOnlyDictionary<string, string> metrics)
    {
    }

    /// <inheritdoc />
    public RoundCheckpoint? TryLoad()
    {
        CheckpointFile.DeleteTemporaryFiles(Directory);
        var current = Path.Combine(Directory, CurrentFile);
        if (!File.Exists(current))
        {
            return null;
        }

        var fileName = File.ReadAllText(current).Trim();
        if (fileName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || !fileName.StartsWith("round-", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"'{current}' names '{fileName}', which is not a checkpoint file.");
        }

        return CheckpointFile.Read(Path.Combine(Directory, fileName));
    }

    /// <inheritdoc />
    public void SaveAgent(AgentEnrolment enrolment)
    {
        ArgumentNullException.ThrowIfNull(enrolment);
        lock (_agentsGate)
        {
            var agents = LoadAgents().ToDictionary(a => a.AgentId, StringComparer.Ordinal);
            agents[enrolment.AgentId] = enrolment;
            System.IO.Directory.CreateDirectory(Directory);
            WriteDurably(Path.Combine(Directory, AgentsFile), JsonSerializer.Serialize(agents.Values.OrderBy(a => a.AgentId, StringComparer.Ordinal)));
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<AgentEnrolment> LoadAgents()
    {
        var path = Path.Combine(Directory, AgentsFile);
        if (!File.Exists(path))
        {
            return [];
        }

        try
        {
            return JsonSerializer.Deserialize<List<AgentEnrolment>>(File.ReadAllText(path)) ?? [];
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is unreadable: {e.Message}", e);
        }
    }

    private static void WriteDurably(string path, string text)
    {
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
        CheckpointFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }
}
