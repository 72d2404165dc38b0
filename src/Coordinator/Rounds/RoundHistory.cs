namespace Federated.Coordinator.Rounds;

/// <summary>
/// The run's completed rounds as the round loop recorded them (the rows of <c>rounds.csv</c> and of the store), for
/// readers on other threads (the dashboard). Written by the round loop only; readers get immutable snapshots.
/// </summary>
internal sealed class RoundHistory
{
    private readonly Lock _lock = new();
    private IReadOnlyList<IReadOnlyDictionary<string, string>> _rows = [];

    private long _version;

    /// <summary>Increases whenever a row is recorded.</summary>
    public long Version
    {
        get
        {
            lock (_lock)
            {
                return _version;
            }
        }
    }

    /// <summary>The rows so far, in round order (a snapshot: later rounds do not change it).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Rows
    {
        get
        {
            lock (_lock)
            {
                return _rows;
            }
        }
    }

    /// <summary>Replaces the history with the rows a resumed run restored.</summary>
    public void Restore(IEnumerable<IReadOnlyDictionary<string, string>> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var copies = rows.Select(Copy).ToList();
        lock (_lock)
        {
            _rows = copies;
            _version++;
        }
    }

    /// <summary>Records a completed round's row, replacing an earlier row of the same round.</summary>
    public void Record(IReadOnlyDictionary<string, string> row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var copy = Copy(row);
        lock (_lock)
        {
            var round = copy.GetValueOrDefault("round");
            var rows = _rows.Where(r => r.GetValueOrDefault("round") != round).ToList();
            rows.Add(copy);
            _rows = rows;
            _version++;
        }
    }

    private static IReadOnlyDictionary<string, string> Copy(IReadOnlyDictionary<string, string> row) =>
        new Dictionary<string, string>(row, StringComparer.Ordinal);
}
