namespace Federated.Learning.Strategies;

/// <summary>
/// Makes any strategy's aggregation independent of the order updates arrive in. Float32 sums are not associative
/// (1e8 + 1 − 1e8 is 0 in one order and 1 in another), so an incremental aggregator that folds updates as they
/// come can give different models for the same seed; this wrapper buffers the round's updates
/// (<see cref="IRoundAggregator.IsIncremental"/> is false: memory O(clients × model)) and feeds them to the inner
/// aggregator sorted by client id (ordinal) in <see cref="IRoundAggregator.Finish"/>. Name, configuration,
/// server tensors and state are the inner strategy's.
/// </summary>
public sealed class DeterministicStrategy : IStrategy
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public DeterministicStrategy(IStrategy inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner;
    }

    /// <summary>The wrapped strategy.</summary>
    public IStrategy Inner { get; }

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => Inner.ConfigureFit(round);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => Inner.ServerTensors(round);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) =>
        new DeterministicAggregator(Inner.BeginRound(round, globalModel, selected, available));

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => Inner.SaveState();

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => Inner.LoadState(state);
}

/// <summary>
/// Buffers a round's updates and, at <see cref="Finish"/>, adds them to the inner aggregator in ordinal client-id
/// order. Updates are checked on arrival (length, examples, finite values, required tensors, duplicates) when the
/// inner aggregator is one of this library's, so a bad update is still rejected by <see cref="Add"/>.
/// </summary>
public sealed class DeterministicAggregator : IRoundAggregator
{
    private readonly IRoundAggregator _inner;
    private readonly Dictionary<string, ClientUpdate> _updates = new(StringComparer.Ordinal);
    private bool _finished;

    /// <summary>Wraps <paramref name="inner"/>, which must not have received updates yet.</summary>
    public DeterministicAggregator(IRoundAggregator inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (inner.Count != 0)
        {
            throw new ArgumentException("The inner aggregator already holds updates.", nameof(inner));
        }

        _inner = inner;
    }

    /// <inheritdoc />
    public bool IsIncremental => false;

    /// <inheritdoc />
    public int Count => _finished ? _inner.Count : _updates.Count;

    /// <inheritdoc />
    public void Add(ClientUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        EnsureOpen();
        if (string.IsNullOrEmpty(update.ClientId))
        {
            throw new ArgumentException("An update has no client id.", nameof(update));
        }

        if (_updates.ContainsKey(update.ClientId))
        {
            throw new ArgumentException($"Client '{update.ClientId}' already contributed to this round.", nameof(update));
        }

        if (_inner is IUpdateValidator validator)
        {
            validator.Validate(update);
        }

        _updates.Add(update.ClientId, update);
    }

    /// <inheritdoc />
    public AggregationResult Finish(IReadOnlyList<ClientFailure> failures)
    {
        EnsureOpen();
        _finished = true;
        foreach (var id in _updates.Keys.Order(StringComparer.Ordinal))
        {
            _inner.Add(_updates[id]);
        }

        _updates.Clear();
        return _inner.Finish(failures);
    }

    private void EnsureOpen()
    {
        if (_finished)
        {
            throw new InvalidOperationException("The round was already finished.");
        }
    }
}
