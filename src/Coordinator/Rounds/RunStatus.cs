namespace Federated.Coordinator.Rounds;

/// <summary>What the status call reports about the run. Updated by the round loop only.</summary>
public sealed class RunStatus
{
    /// <summary>The run id (stable across restarts of one run).</summary>
    public string RunId { get; set; } = "";

    /// <summary>The round in progress or last completed.</summary>
    public int CurrentRound { get; set; }

    /// <summary>Rounds the run has in all.</summary>
    public int TotalRounds { get; set; }

    /// <summary>Checksum of the global model after the last completed (or restored) round.</summary>
    public string GlobalChecksum { get; set; } = "";

    /// <summary>Rounds completed so far in this run (restored ones included).</summary>
    public int CompletedRounds { get; set; }

    /// <summary>True after the last round (or when the run stopped early and cleanly, see <see cref="StopReason"/>).</summary>
    public bool Finished { get; set; }

    /// <summary>Why a finished run stopped before its last round (the privacy budget); empty when it ran them all.</summary>
    public string StopReason { get; set; } = "";

    /// <summary>Agents asked to train in the round in progress.</summary>
    public int RoundSelected { get; set; }

    /// <summary>Results accepted so far in the round in progress.</summary>
    public int RoundResults { get; set; }

    /// <summary>Failures so far in the round in progress.</summary>
    public int RoundFailures { get; set; }

    /// <summary>When the round in progress started (null before the first).</summary>
    public DateTimeOffset? RoundStartedAt { get; set; }
}
