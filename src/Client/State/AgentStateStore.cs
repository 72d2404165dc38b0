using System.Text.Json;
using System.Text.RegularExpressions;
using Federated.Learning.Checkpoints;
using Federated.Learning.Compression;
using Federated.Learning.Weights;

namespace Federated.Client.State;

/// <summary>
/// The agent's crash-safe state directory: <c>state.json</c> (versioned: id, last round and task, model name and
/// layout fingerprint), <c>local.safetensors</c> (the local model, via <see cref="ModelCheckpoint"/>) and
/// <c>local-state.safetensors</c> (strategy state such as SCAFFOLD's c_local, named F32 tensors), and with compressed
/// transfers <c>uplink-residual.safetensors</c> (the error-feedback residual) and <c>downlink-model.safetensors</c> (the
/// global model as this agent reconstructed it from compressed downlinks, with its version). Every file is
/// written under a temporary name and renamed over the old one, so a crash leaves either the old or the new file.
/// A corrupt or future-version file is reported and ignored (the agent id is kept when it can still be read).
/// </summary>
internal sealed partial class AgentStateStore
{
    /// <summary>The state file's name.</summary>
    public const string StateFileName = "state.json";

    /// <summary>The local model's file name.</summary>
    public const string ModelFileName = "local.safetensors";

    /// <summary>The strategy state's file name.</summary>
    public const string LocalStateFileName = "local-state.safetensors";

    /// <summary>The error-feedback residual's file name.</summary>
    public const string ResidualFileName = "uplink-residual.safetensors";

    /// <summary>The reconstructed global model's file name.</summary>
    public const string DownlinkModelFileName = "downlink-model.safetensors";

    /// <summary>The folder that holds uploads not yet delivered, one sub-folder each.</summary>
    public const string PendingFolderName = "pending";

    /// <summary>The folder reserved for continual-learning state (written by <c>Federated.Learning.Continual</c>; the agent never deletes it).</summary>
    public const string ContinualFolderName = "continual";

    /// <summary>The agent's live status (<see cref="AgentStatus"/>), for <c>federated-client status</c>.</summary>
    public const string StatusFileName = "status.json";

    private const string DownlinkTensor = "model";
    private const string DownlinkVersionKey = "federated.model_version";
    private const string DownlinkLayoutKey = "federated.layout";

    private readonly ILogger _logger;

    /// <summary>Uses <paramref name="directory"/> (created on the first write).</summary>
    public AgentStateStore(string directory, ILogger<AgentStateStore> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(logger);
        Directory = Path.GetFullPath(directory);
        _logger = logger;
    }

    /// <summary>The state directory (absolute).</summary>
    public string Directory { get; }

    /// <summary>Path of <c>state.json</c>.</summary>
    public string StatePath => Path.Combine(Directory, StateFileName);

    /// <summary>Path of the local model.</summary>
    public string ModelPath => Path.Combine(Directory, ModelFileName);

    /// <summary>Path of the strategy state.</summary>
    public string LocalStatePath => Path.Combine(Directory, LocalStateFileName);

    /// <summary>Path of the error-feedback residual.</summary>
    public string ResidualPath => Path.Combine(Directory, ResidualFileName);

    /// <summary>Path of the reconstructed global model.</summary>
    public string DownlinkModelPath => Path.Combine(Directory, DownlinkModelFileName);

    /// <summary>The folder of pending uploads.</summary>
    public string PendingDirectory => Path.Combine(Directory, PendingFolderName);

    /// <summary>The continual-learning slot: a directory a <c>ContinualState</c> saves itself into and restores from.</summary>
    public string ContinualDirectory => Path.Combine(Directory, ContinualFolderName);

    /// <summary>Path of <c>status.json</c>.</summary>
    public string StatusPath => Path.Combine(Directory, StatusFileName);

    /// <summary>Creates the directory and its fixed sub-folders (<c>pending/</c>, <c>continual/</c>).</summary>
    public void EnsureLayout()
    {
        System.IO.Directory.CreateDirectory(PendingDirectory);
        System.IO.Directory.CreateDirectory(ContinualDirectory);
    }

    /// <summary>Reads <c>state.json</c>; a missing file gives a fresh state, a corrupt or future one a warning and a fresh state that keeps a readable agent id.</summary>
    public AgentState Load()
    {
        var path = StatePath;
        if (!File.Exists(path))
        {
            return new AgentState();
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (IOException e)
        {
            ClientStateLog.StateUnreadable(_logger, path, e.Message);
            return new AgentState();
        }
        catch (UnauthorizedAccessException e)
        {
            ClientStateLog.StateUnreadable(_logger, path, e.Message);
            return new AgentState();
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            var version = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) ? n : -1;
            if (version is < AgentState.OldestReadableVersion or > AgentState.CurrentVersion)
            {
                var id = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("agentId", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
                ClientStateLog.StateUnsupported(_logger, path, version, AgentState.CurrentVersion, id is not null);
                return new AgentState { AgentId = NullIfEmpty(id) };
            }

            var state = root.Deserialize(AgentStateJsonContext.Default.AgentState) ?? new AgentState();
            return state with { AgentId = NullIfEmpty(state.AgentId) };
        }
        catch (JsonException e)
        {
            var match = AgentIdPattern().Match(text);
            var id = match.Success ? match.Groups[1].Value : null;
            ClientStateLog.StateCorrupt(_logger, path, e.Message, id is not null);
            return new AgentState { AgentId = NullIfEmpty(id) };
        }
    }

    /// <summary>Writes <c>state.json</c> atomically.</summary>
    public void Save(AgentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(state with { Version = AgentState.CurrentVersion }, AgentStateJsonContext.Default.AgentState);
        WriteAtomically(StatePath, bytes);
    }

    /// <summary>Saves the local model (atomically, by <see cref="ModelCheckpoint.Save"/>).</summary>
    public void SaveModel(ModelWeights weights, string modelName)
    {
        ArgumentNullException.ThrowIfNull(weights);
        System.IO.Directory.CreateDirectory(Directory);
        ModelCheckpoint.Save(ModelPath, weights, new Dictionary<string, string>(StringComparer.Ordinal) { ["federated.model"] = modelName });
    }

    /// <summary>Loads the saved local model into <paramref name="weights"/> when its layout matches; false (with a warning when the file is bad) otherwise.</summary>
    public bool TryLoadModel(ModelWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var path = ModelPath;
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            var header = SafeTensorsFile.Read(path).Metadata;
            if (!header.TryGetValue(ModelCheckpoint.LayoutKey, out var fingerprint) || fingerprint != weights.Layout.Fingerprint)
            {
                return false;
            }

            ModelCheckpoint.Load(path, weights);
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or KeyNotFoundException or FormatException)
        {
            ClientStateLog.FileIgnored(_logger, path, e.Message);
            return false;
        }
    }

    /// <summary>Saves the strategy state (named float vectors) atomically; an empty state removes the file.</summary>
    public void SaveLocalState(IReadOnlyDictionary<string, float[]> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0)
        {
            File.Delete(LocalStatePath);
            return;
        }

        System.IO.Directory.CreateDirectory(Directory);
        WriteLocalState(LocalStatePath, tensors);
    }

    /// <summary>Reads the strategy state; a missing file gives an empty one, a corrupt one a warning and an empty one.</summary>
    public Dictionary<string, float[]> LoadLocalState()
    {
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var path = LocalStatePath;
        if (!File.Exists(path))
        {
            return result;
        }

        try
        {
            foreach (var tensor in SafeTensorsFile.Read(path).Tensors)
            {
                result[tensor.Name] = tensor.ToSingles();
            }

            return result;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException or ArgumentException or FormatException)
        {
            ClientStateLog.FileIgnored(_logger, path, e.Message);
            return new Dictionary<string, float[]>(StringComparer.Ordinal);
        }
    }

    /// <summary>Saves the error-feedback residual atomically; null removes the file.</summary>
    public void SaveResidual(ErrorFeedback? feedback)
    {
        if (feedback is null)
        {
            File.Delete(ResidualPath);
            return;
        }

        System.IO.Directory.CreateDirectory(Directory);
        feedback.Save(ResidualPath);
    }

    /// <summary>The saved residual for deltas of <paramref name="length"/> floats; null when there is none, or (with a warning) when the file is bad or of another length.</summary>
    public ErrorFeedback? LoadResidual(int length)
    {
        var path = ResidualPath;
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return ErrorFeedback.Load(path, length);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            ClientStateLog.FileIgnored(_logger, path, e.Message);
            return null;
        }
    }

    /// <summary>Saves the reconstructed global model with its <paramref name="version"/> and layout, atomically.</summary>
    public void SaveDownlinkModel(ReadOnlySpan<float> model, string version, string fingerprint)
    {
        ArgumentException.ThrowIfNullOrEmpty(version);
        ArgumentException.ThrowIfNullOrEmpty(fingerprint);
        System.IO.Directory.CreateDirectory(Directory);
        SafeTensorsFile.Write(
            DownlinkModelPath,
            [SafeTensor.FromSingles(DownlinkTensor, [model.Length], model)],
            new Dictionary<string, string>(StringComparer.Ordinal) { [DownlinkVersionKey] = version, [DownlinkLayoutKey] = fingerprint });
    }

    /// <summary>
    /// The saved reconstructed global model and its version when it is of layout <paramref name="fingerprint"/> and
    /// <paramref name="length"/> floats; null when there is none or it is of another layout, and (with a warning) when the file is bad.
    /// </summary>
    public (float[] Model, string Version)? LoadDownlinkModel(string fingerprint, int length)
    {
        var path = DownlinkModelPath;
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            var content = SafeTensorsFile.Read(path);
            if (!content.Metadata.TryGetValue(DownlinkLayoutKey, out var layout) || layout != fingerprint)
            {
                return null;
            }

            if (!content.Metadata.TryGetValue(DownlinkVersionKey, out var version) || string.IsNullOrEmpty(version)
                || !content.TryGet(DownlinkTensor, out var tensor) || tensor.DType != SafeTensorDType.F32 || tensor.ElementCount != length)
            {
                throw new InvalidDataException($"it is not a model of {length} floats with a version");
            }

            return (tensor.ToSingles(), version);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException or FormatException)
        {
            ClientStateLog.FileIgnored(_logger, path, e.Message);
            return null;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to a temporary file next to <paramref name="path"/>, flushes it to disk and renames it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        System.IO.Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    [GeneratedRegex("\"agentId\"\\s*:\\s*\"([^\"\\\\\\s]{1,128})\"")]
    private static partial Regex AgentIdPattern();
}

/// <summary>Log messages of the state store.</summary>
internal static partial class ClientStateLog
{
    [LoggerMessage(EventId = 2100, Level = LogLevel.Warning, Message = "State file {Path} is corrupt ({Reason}); starting with fresh state (agent id kept: {KeptId})")]
    public static partial void StateCorrupt(ILogger logger, string path, string reason, bool keptId);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "State file {Path} has version {Version}, this agent reads version {Supported}; starting with fresh state (agent id kept: {KeptId})")]
    public static partial void StateUnsupported(ILogger logger, string path, int version, int supported, bool keptId);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "State file {Path} could not be read ({Reason}); starting with fresh state")]
    public static partial void StateUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Warning, Message = "Ignoring state file {Path}: {Reason}")]
    public static partial void FileIgnored(ILogger logger, string path, string reason);
}
