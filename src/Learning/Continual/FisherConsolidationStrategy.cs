using Federated.Learning.Strategies;

namespace Federated.Learning.Continual;

/// <summary>
/// Federated Fisher consolidation around any strategy: every round asks the agents (configuration
/// <see cref="FisherConsolidation.ConfigKey"/>) to upload the Fisher diagonal of an experience boundary they have just
/// crossed; in a round where some do, it averages the diagonals weighted by the agents' examples
/// (<see cref="FisherConsolidation.WeightedMean"/>) and keeps the mean with the global model the round started from —
/// the model the agents estimated their diagonals at — as the anchor. From the next round on both travel with the
/// global model as server tensors (<see cref="FisherConsolidation.FisherKey"/>, <see cref="FisherConsolidation.AnchorKey"/>)
/// and the agents' EWC penalises distance from that anchor with the consolidated importance. The inner strategy never
/// sees the Fisher tensors. The diagonals of one round are held until it finishes (O(agents × model) in boundary
/// rounds only); diagonals of updates the inner strategy rejects are left out; the consolidated pair is part of
/// <see cref="SaveState"/>.
/// </summary>
public sealed class FisherConsolidationStrategy : IStrategy
{
    private float[]? _fisher;
    private float[]? _anchor;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public FisherConsolidationStrategy(IStrategy inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner;
    }

    /// <summary>The wrapped strategy.</summary>
    public IStrategy Inner { get; }

    /// <summary>The consolidated Fisher diagonal (null before any agent uploaded one).</summary>
    public IReadOnlyList<float>? Fisher => _fisher;

    /// <summary>The anchor kept with <see cref="Fisher"/>.</summary>
    public IReadOnlyList<float>? Anchor => _anchor;

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) =>
        new Dictionary<string, string>(Inner.ConfigureFit(round), StringComparer.Ordinal) { [FisherConsolidation.ConfigKey] = "true" };

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round)
    {
        var tensors = new Dictionary<string, float[]>(Inner.ServerTensors(round), StringComparer.Ordinal);
        if (_fisher is not null && _anchor is not null)
        {
            tensors[FisherConsolidation.FisherKey] = _fisher;
            tensors[FisherConsolidation.AnchorKey] = _anchor;
        }

        return tensors;
    }

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) =>
        new Aggregator(this, Inner.BeginRound(round, globalModel, selected, available), globalModel);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState()
    {
        var state = new Dictionary<string, float[]>(Inner.SaveState(), StringComparer.Ordinal);
        if (_fisher is not null && _anchor is not null)
        {
            state[FisherConsolidation.FisherKey] = _fisher;
            state[FisherConsolidation.AnchorKey] = _anchor;
        }

        return state;
    }

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _fisher = state.TryGetValue(FisherConsolidation.FisherKey, out var fisher) ? [.. fisher] : null;
        _anchor = state.TryGetValue(FisherConsolidation.AnchorKey, out var anchor) ? [.. anchor] : null;
        Inner.LoadState(state
            .Where(p => p.Key is not (FisherConsolidation.FisherKey or FisherConsolidation.AnchorKey))
            .ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));
    }

    private sealed class Aggregator(FisherConsolidationStrategy owner, IRoundAggregator inner, ReadOnlyMemory<float> global) : IRoundAggregator
    {
        private readonly List<(string ClientId, float[] Fisher, long Examples)> _diagonals = [];

        public bool IsIncremental => inner.IsIncremental;

        public int Count => inner.Count;

        public void Add(ClientUpdate update)
        {
            ArgumentNullException.ThrowIfNull(update);
            if (!update.Tensors.TryGetValue(FisherConsolidation.FisherKey, out var fisher))
            {
                inner.Add(update);
                return;
            }

            if (fisher.Length != global.Length)
            {
                throw new ArgumentException($"The Fisher diagonal of {update.ClientId} has {fisher.Length} values; the model has {global.Length}.", nameof(update));
            }

            inner.Add(new ClientUpdate
            {
                ClientId = update.ClientId,
                NumExamples = update.NumExamples,
                Delta = update.Delta,
                LocalSteps = update.LocalSteps,
                Metrics = update.Metrics,
                Tensors = update.Tensors.Where(p => p.Key != FisherConsolidation.FisherKey).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
            });
            _diagonals.Add((update.ClientId, fisher, update.NumExamples));
        }

        public AggregationResult Finish(IReadOnlyList<ClientFailure> failures)
        {
            var result = inner.Finish(failures);
            var rejected = result.Rejected.Select(r => r.ClientId).ToHashSet(StringComparer.Ordinal);
            var kept = _diagonals.Where(d => !rejected.Contains(d.ClientId)).Select(d => (d.Fisher, d.Examples)).ToList();
            if (kept.Count == 0 || kept.Sum(d => d.Examples) <= 0)
            {
                return result;
            }

            owner._fisher = FisherConsolidation.WeightedMean(kept);
            owner._anchor = global.ToArray();
            var metrics = new Dictionary<string, double>(result.Metrics, StringComparer.Ordinal) { ["continual_fisher_agents"] = kept.Count };
            return result with { Metrics = metrics };
        }
    }
}
