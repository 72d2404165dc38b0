namespace Federated.Coordinator.State;

/// <summary>Everything the coordinator needs to resume a run at the next round.</summary>
public sealed class RoundCheckpoint
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

    /// <summary>Per-round metrics so far, as CSV rows keyed by column.</summary>
    public required IReadOnlyList<IReadOnlyDictionary<string, string>> History { get; init; }

    /// <summary>
    /// The privacy ledger of a differentially private run (<see cref="Learning.Privacy.PrivacyLedger.ToJson"/>: the
    /// (q, z, steps) charged so far), so that a restart continues ε; null without differential privacy.
    /// </summary>
    public string? PrivacyLedger { get; init; }
}

/// <summary>Where the coordinator keeps its state. Saves are atomic: a crash leaves the previous checkpoint intact.</summary>
public interface IRoundStateStore
{
    /// <summary>Persists <paramref name="checkpoint"/>.</summary>
    void Save(RoundCheckpoint checkpoint, IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> layout);

    /// <summary>The latest checkpoint, or null when there is none.</summary>
    /// <exception cref="InvalidDataException">The stored checkpoint is corrupt.</exception>
    RoundCheckpoint? TryLoad();
}
