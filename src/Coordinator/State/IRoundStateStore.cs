namespace Federated.Coordinator.State;

/// <summary>Everything the coordinator needs to resume a run at the next round.</summary>
internal sealed class RoundCheckpoint
{
    /// <summary>The run this checkpoint belongs to.</summary>
    public required string RunId { get; init; }

    /// <summary>The last completed round.</summary>
    public required int Round { get; init; }

    /// <summary>The model architecture.</summary>
    public required string Model { get; init; }

    /// <summary>The global model's layout fingerprint.</summary>
    public required string LayoutFingerprint { get; init; }

    /// <summary>The global model after <see cref="Round"/>.</summary>
    public required float[] Global { get; init; }

    /// <summary>The strategy's name.</summary>
    public required string Strategy { get; init; }

    /// <summary>The strategy's state (server optimiser moments, control variates).</summary>
    public required IReadOnlyDictionary<string, float[]> StrategyState { get; init; }

    /// <summary>
    /// Per-round metrics so far, as CSV rows keyed by column. The last row is provisional when saved (the columns known
    /// before the model leaves the coordinator); <see cref="IRoundStateStore.CompleteRound"/> or the next checkpoint
    /// completes it.
    /// </summary>
    public required IReadOnlyList<IReadOnlyDictionary<string, string>> History { get; init; }

    /// <summary>
    /// The privacy ledger of a differentially private run (<see cref="Learning.Privacy.PrivacyLedger.ToJson"/>: the
    /// (q, z, steps) charged so far), so that a restart continues ε; null without differential privacy.
    /// </summary>
    public string? PrivacyLedger { get; init; }

    /// <summary>ε spent after <see cref="Round"/> (at the run's δ); null without differential privacy.</summary>
    public double? Epsilon { get; init; }
}

/// <summary>An enrolled agent as the store keeps it: never the session token itself, only its SHA-256.</summary>
/// <param name="AgentId">The agent id.</param>
/// <param name="TokenSha256">Lower-case hex SHA-256 of the session token issued at the latest enrolment.</param>
/// <param name="Capabilities">The agent's <c>Capabilities</c> message, protobuf-encoded.</param>
/// <param name="EnrolledUnixMs">When the agent first enrolled (Unix milliseconds).</param>
/// <param name="LastEnrolledUnixMs">When it last enrolled (Unix milliseconds).</param>
internal sealed record AgentEnrolment(string AgentId, string TokenSha256, byte[] Capabilities, long EnrolledUnixMs, long LastEnrolledUnixMs);

/// <summary>
/// Where the coordinator keeps its state: checkpoints, per-round metrics, the privacy ledger and enrolments. Saves are
/// atomic and durable when they return: a crash (even SIGKILL or a power cut) leaves the previous state intact.
/// </summary>
internal interface IRoundStateStore
{
    /// <summary>
    /// Persists <paramref name="checkpoint"/>: the model, the strategy state, the round's provisional metrics row and
    /// the privacy ledger. Called before the round's model leaves the coordinator, so ε is on disk first.
    /// </summary>
    void Save(RoundCheckpoint checkpoint, IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> layout);

    /// <summary>Replaces round <paramref name="round"/>'s provisional metrics row with the complete one.</summary>
    void CompleteRound(string runId, int round, IReadOnlyDictionary<string, string> metrics);

    /// <summary>The latest checkpoint, or null when there is none.</summary>
    /// <exception cref="InvalidDataException">The stored checkpoint is corrupt.</exception>
    RoundCheckpoint? TryLoad();

    /// <summary>Records an enrolment (insert or replace by agent id).</summary>
    void SaveAgent(AgentEnrolment enrolment);

    /// <summary>Every recorded enrolment.</summary>
    IReadOnlyList<AgentEnrolment> LoadAgents();
}
