namespace Federated.Client.State;

/// <summary>
/// What <c>status.json</c> holds: the running agent's live state, rewritten (atomically) whenever its phase changes, so
/// that <c>federated-client status</c> can show it without talking to the process.
/// </summary>
internal sealed record AgentStatus
{
    /// <summary>The file format version.</summary>
    public int Version { get; init; } = 1;

    /// <summary>The agent's id.</summary>
    public string? AgentId { get; init; }

    /// <summary>The agent's process id (to tell a running agent from a stale file).</summary>
    public int ProcessId { get; init; }

    /// <summary>The device it trains on (<c>cpu</c>, <c>cuda:0</c>).</summary>
    public string? Device { get; init; }

    /// <summary>The precision it trains in (<c>fp32</c>, <c>bf16</c>, <c>fp16</c>).</summary>
    public string? Precision { get; init; }

    /// <summary>The device setting it was started with (<c>auto</c>, <c>cpu</c>, <c>cuda</c>).</summary>
    public string? DeviceRequested { get; init; }

    /// <summary>Why <c>auto</c> did not pick CUDA (null when it did, or when the device was not <c>auto</c>).</summary>
    public string? DeviceFallback { get; init; }

    /// <summary>libtorch intra-op threads in use.</summary>
    public int Threads { get; init; }

    /// <summary>The coordinator's address.</summary>
    public string? Coordinator { get; init; }

    /// <summary>Whether a session with the coordinator is open.</summary>
    public bool Connected { get; init; }

    /// <summary><c>starting</c>, <c>connecting</c>, <c>idle</c>, <c>downloading</c>, <c>training</c>, <c>paused</c>, <c>uploading</c>, <c>evaluating</c> or <c>stopped</c>.</summary>
    public string Phase { get; init; } = "starting";

    /// <summary>Why training is paused (pause file, training window).</summary>
    public string? PauseReason { get; init; }

    /// <summary>The task being worked on.</summary>
    public string? TaskId { get; init; }

    /// <summary>The round of that task.</summary>
    public int Round { get; init; }

    /// <summary>The last round whose training completed.</summary>
    public int LastRound { get; init; }

    /// <summary>The last result.</summary>
    public TaskSummary? LastResult { get; init; }

    /// <summary>Uploads sealed but not yet delivered.</summary>
    public int PendingUploads { get; init; }

    /// <summary>When the process started.</summary>
    public DateTimeOffset StartedAt { get; init; }

    /// <summary>When this file was written.</summary>
    public DateTimeOffset UpdatedAt { get; init; }
}
