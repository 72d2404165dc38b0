using System.Text.Json.Serialization;

namespace Federated.Client.State;

/// <summary>What <c>state.json</c> holds: the agent's identity and where it got to.</summary>
public sealed record AgentState
{
    /// <summary>The file format version this build writes.</summary>
    public const int CurrentVersion = 1;

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
}

/// <summary>Source-generated JSON for <see cref="AgentState"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentState))]
internal sealed partial class AgentStateJsonContext : JsonSerializerContext;
