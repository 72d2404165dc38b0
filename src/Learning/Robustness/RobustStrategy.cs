using Federated.Learning.Strategies;

namespace Federated.Learning.Robustness;

/// <summary>
/// Makes a robust rule the aggregation stage of a mean-based strategy (FedAvg, FedProx, FedAvgM, FedAdagrad,
/// FedAdam, FedYogi, FedNova): the round's updates are buffered (not incremental: memory O(clients × model)),
/// validated (<see cref="UpdateValidator"/>), reduced by the rule in ordinal client-id order, and the result is fed
/// to the inner strategy's aggregator as one update carrying the accepted updates' total example count, so the
/// inner server step (learning rate, momentum, adaptive moments) runs on the robust aggregate instead of the
/// weighted mean. FedNova's per-client step normalisation has nothing left to normalise and becomes the identity.
/// SCAFFOLD is refused: its control variates would bypass the rule.
/// <para>
/// Rejections: an update that fails the per-update checks makes <see cref="IRoundAggregator.Add"/> throw an
/// <see cref="UpdateRejectedException"/> (an <see cref="ArgumentException"/> with the reason), so the caller lists it
/// among the round's failures; updates rejected at <see cref="IRoundAggregator.Finish"/> (norm outliers) come back in
/// <see cref="AggregationResult.Rejected"/>. The result's metrics count both: <c>rejected</c> and
/// <c>rejected.&lt;code&gt;</c>, plus the rule's <c>robust.*</c> diagnostics; <c>accepted</c> counts the updates
/// that went into the rule. The last aggregate is kept (state <c>robust.previous</c>) and given to the rule as
/// <see cref="RobustContext.Previous"/>, the centre of <see cref="CenteredClipping"/>.
/// </para>
/// </summary>
public sealed class RobustStrategy : IStrategy
{
    /// <summary>The state key of the previous round's robust aggregate.</summary>
    public const string PreviousKey = "robust.previous";

    private float[]? _previous;

    /// <summary>Wraps <paramref name="inner"/> with <paramref name="aggregator"/> and <paramref name="validator"/> (defaults when null).</summary>
    public RobustStrategy(IStrategy inner, IRobustAggregator aggregator, UpdateValidator? validator = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(aggregator);
        if ((inner is DeterministicStrategy deterministic ? deterministic.Inner : inner) is Scaffold)
        {
            throw new ArgumentException("SCAFFOLD cannot take a robust aggregation stage: its control variates would be averaged around the rule.", nameof(inner));
        }

        Inner = inner;
        Aggregator = aggregator;
        Validator = validator ?? new UpdateValidator();
    }

    /// <summary>The wrapped strategy (its server step runs on the robust aggregate).</summary>
    public IStrategy Inner { get; }

    /// <summary>The robust rule.</summary>
    public IRobustAggregator Aggregator { get; }

    /// <summary>The validation before aggregation.</summary>
    public UpdateValidator Validator { get; }

    /// <summary>The inner strategy's name and the rule's, e.g. <c>fedadam+trimmed_mean:beta=0.2</c>.</summary>
    public string Name => $"{Inner.Name}+{Aggregator.Name}";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => Inner.ConfigureFit(round);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => Inner.ServerTensors(round);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available)
    {
        StrategyGuards.CheckStateFits(Name, _previous, globalModel.Length);
        return new RoundAggregator(this, round, globalModel.Length, Inner.BeginRound(round, globalModel, selected, available));
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState()
    {
        var state = new Dictionary<string, float[]>(Inner.SaveState(), StringComparer.Ordinal);
        if (_previous is not null)
        {
            state[PreviousKey] = (float[])_previous.Clone();
        }

        return state;
    }

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Inner.LoadState(state.Where(kv => kv.Key != PreviousKey).ToDictionary(StringComparer.Ordinal));
        if (state.TryGetValue(PreviousKey, out var previous))
        {
            StrategyGuards.CheckState(Name, new Dictionary<string, float[]> { [PreviousKey] = previous }, PreviousKey);
            _previous = (float[])previous.Clone();
        }
        else
        {
            _previous = null;
        }
    }

    private sealed class RoundAggregator(RobustStrategy owner, int round, int length, IRoundAggregator inner) : IRoundAggregator
    {
        private readonly Dictionary<string, ClientUpdate> _updates = new(StringComparer.Ordinal);
        private readonly List<UpdateRejection> _rejections = [];
        private bool _finished;
        private int _accepted;

        public bool IsIncremental => false;

        public int Count => _finished ? _accepted : _updates.Count;

        public void Add(ClientUpdate update)
        {
            ArgumentNullException.ThrowIfNull(update);
            EnsureOpen();
            var rejection = UpdateValidator.Check(update, length);
            if (rejection is null && _updates.ContainsKey(update.ClientId))
            {
                rejection = UpdateValidator.Duplicate(update.ClientId);
            }

            if (rejection is not null)
            {
                _rejections.Add(rejection);
                throw new UpdateRejectedException(rejection);
            }

            _updates.Add(update.ClientId, update);
        }

        public AggregationResult Finish(IReadOnlyList<ClientFailure> failures)
        {
            EnsureOpen();
            _finished = true;
            var ordered = _updates.Keys.Order(StringComparer.Ordinal).Select(id => _updates[id]).ToList();
            _updates.Clear();
            var validation = owner.Validator.Validate(ordered, length);
            _rejections.AddRange(validation.Rejections);
            var accepted = validation.Accepted;
            _accepted = accepted.Count;
            if (accepted.Count == 0)
            {
                throw new InvalidOperationException($"{owner.Name}: no updates to aggregate in round {round} ({failures?.Count ?? 0} failures, {_rejections.Count} rejected).");
            }

            var robustMetrics = new Dictionary<string, double>(StringComparer.Ordinal);
            float[] aggregate;
            try
            {
                aggregate = owner.Aggregator.Aggregate(
                    accepted.Select(u => (ReadOnlyMemory<float>)u.Delta).ToList(),
                    accepted.Select(u => (double)u.NumExamples).ToList(),
                    new RobustContext { Round = round, Previous = owner._previous, Metrics = robustMetrics });
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"{owner.Name}: round {round} cannot be aggregated: {e.Message}", e);
            }

            var examples = accepted.Sum(u => u.NumExamples);
            inner.Add(new ClientUpdate
            {
                ClientId = "robust",
                NumExamples = examples,
                Delta = aggregate,
                LocalSteps = Math.Max(1, (long)Math.Round(accepted.Sum(u => (double)u.NumExamples * u.LocalSteps) / examples)),
                Metrics = WeightedMetrics(accepted),
            });
            var result = inner.Finish(failures ?? []);
            var metrics = new Dictionary<string, double>(result.Metrics, StringComparer.Ordinal) { ["accepted"] = accepted.Count };
            foreach (var (key, value) in robustMetrics)
            {
                metrics[key] = value;
            }

            ValidationResult.AddCounts(_rejections, metrics);
            owner._previous = aggregate;
            return new AggregationResult(result.Global, accepted.Count, metrics) { Rejected = validation.Rejections.Select(r => r.ToFailure()).ToList() };
        }

        /// <summary>The example-weighted mean of every finite client metric, over the clients that report it.</summary>
        private static Dictionary<string, double> WeightedMetrics(IReadOnlyList<ClientUpdate> updates)
        {
            var sums = new Dictionary<string, (double Sum, double Weight)>(StringComparer.Ordinal);
            foreach (var update in updates)
            {
                foreach (var (key, value) in update.Metrics)
                {
                    if (double.IsFinite(value))
                    {
                        var (sum, weight) = sums.GetValueOrDefault(key);
                        sums[key] = (sum + (update.NumExamples * value), weight + update.NumExamples);
                    }
                }
            }

            return sums.ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.Weight, StringComparer.Ordinal);
        }

        private void EnsureOpen()
        {
            if (_finished)
            {
                throw new InvalidOperationException($"{owner.Name}: the round was already finished.");
            }
        }
    }
}
