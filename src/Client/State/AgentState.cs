using System.Text.Json.Serialization;

namespace Federated.Client.State;

/// <summary>What <c>state.json</c> holds: the agent's identity and where it got to.</summary>
internal sealed record AgentState
{
    /// <summary>
    /// The state directory's format version this build writes: 1 (state.json, model, strategy state, residual,
    /// downlink model), 2 (adds <see cref="LastResult"/>, <see cref="Device"/>, <c>pending/</c> uploads and the
    /// <c>continual/</c> slot). Version 1 directories are read and upgraded on the next write.
    /// </summary>
    public const int CurrentVersion = 2;

    /// <summary>The oldest version this build still reads.</summary>
    public const int OldestReadableVersion = 1;

    /// <summary>The file format version.</summary>
    public int Version { get; init; } = CurrentVersion;

    /// <summary>The agent's id (kept across restarts so the agent re-enrols as itself).</summary>
    public string? AgentId { get; init; }

    /// <summary>The last round whose train task completed (0 before the first).</summary>
    public int LastRound { get; init; }

    /// <summary>The last completed task.</summary>
    public string? LastTaskId { get; init; }

    /// <summary>The model architecture of <c>local.safetensors</c>.</summary>
    public string? ModelName { get; init; }

    /// <summary>The layout fingerprint of <c>local.safetensors</c>.</summary>
    public string? LayoutFingerprint { get; init; }

    /// <summary>When the state was written.</summary>
    public DateTimeOffset? SavedAt { get; init; }

    /// <summary>The device the agent trained on when it last wrote its state (<c>cpu</c>, <c>cuda:0</c>).</summary>
    public string? Device { get; init; }

    /// <summary>The last task result the agent produced.</summary>
    public TaskSummary? LastResult { get; init; }
}

/// <summary>A task result in a line: what <c>federated-client status</c> shows as the last result.</summary>
internal sealed record TaskSummary
{
    /// <summary>The task.</summary>
    public string? TaskId { get; init; }

    /// <summary>Its round.</summary>
    public int Round { get; init; }

    /// <summary><c>train</c> or <c>evaluate</c>.</summary>
    public string? Kind { get; init; }

    /// <summary>Whether it succeeded.</summary>
    public bool Ok { get; init; }

    /// <summary>Why it failed.</summary>
    public string? Error { get; init; }

    /// <summary>Examples it used.</summary>
    public long Examples { get; init; }

    /// <summary>Training or evaluation loss.</summary>
    public double? Loss { get; init; }

    /// <summary>Training or evaluation accuracy.</summary>
    public double? Accuracy { get; init; }

    /// <summary>Whether the coordinator has it (false while its upload is pending).</summary>
    public bool Delivered { get; init; }

    /// <summary>When it finished.</summary>
    public DateTimeOffset? At { get; init; }
}

/// <summary>Source-generated JSON for <see cref="AgentState"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentState))]
[JsonSerializable(typeof(AgentStatus))]
[JsonSerializable(typeof(PendingUploadManifest))]
internal sealed partial class AgentStateJsonContext : JsonSerializerContext;
