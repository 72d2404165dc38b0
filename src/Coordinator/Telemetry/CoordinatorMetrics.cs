using System.Diagnostics.Metrics;

namespace Federated.Coordinator.Telemetry;

/// <summary>
/// The coordinator's metrics (meter <c>Federated.Coordinator</c>), exported by OpenTelemetry (Prometheus at
/// <c>Coordinator:Prometheus:Path</c>). Names follow the OpenTelemetry conventions; Prometheus sees them with dots
/// turned into underscores, the unit appended and <c>_total</c> on counters, e.g.
/// <c>federated_rounds_completed_total</c>, <c>federated_transfer_bytes_total{direction="up"}</c>,
/// <c>federated_aggregation_duration_seconds_bucket</c>. Every series carries the label <c>run</c>: <c>configured</c> for
/// the configured run, the run id for a submitted one.
/// </summary>
internal sealed class CoordinatorMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Federated.Coordinator";

    private readonly Counter<long> _roundsCompleted;
    private readonly Counter<long> _roundsFailed;
    private readonly Histogram<int> _participants;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _aggregation;
    private readonly Histogram<double> _roundDuration;
    private readonly Gauge<double> _epsilon;
    private readonly Gauge<long> _round;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public CoordinatorMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _roundsCompleted = meter.CreateCounter<long>("federated.rounds.completed", "{round}", "Rounds that released a new global model.");
        _roundsFailed = meter.CreateCounter<long>("federated.rounds.failed", "{round}", "Rounds that ended with the global model unchanged (too few results, aggregation refused, nothing released).");
        _participants = meter.CreateHistogram<int>("federated.round.participants", "{agent}", "Accepted results per round.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });
        _bytes = meter.CreateCounter<long>("federated.transfer", "By", "Bytes moved on the wire for rounds, by direction (up: agents to coordinator).");
        _rejected = meter.CreateCounter<long>("federated.updates.rejected", "{update}", "Updates rejected at upload or left out by the aggregation rule.");
        _aggregation = meter.CreateHistogram<double>("federated.aggregation.duration", "s", "Time spent folding and finishing a round's aggregation.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60] });
        _roundDuration = meter.CreateHistogram<double>("federated.round.duration", "s", "Wall time of a round, from sampling to its metrics row.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800] });
        _epsilon = meter.CreateGauge<double>("federated.privacy.epsilon", "1", "Privacy spent so far by a differentially private run (ε at the run's δ).");
        _round = meter.CreateGauge<long>("federated.round.last_completed", "{round}", "The last round the run completed (restored rounds included).");
    }

    /// <summary>Records a finished round.</summary>
    public void RoundFinished(RoundFigures figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        var run = Run(figures.Run);
        (figures.Ok ? _roundsCompleted : _roundsFailed).Add(1, run);
        _participants.Record(figures.Participants, run);
        _bytes.Add(figures.BytesUp, run, new KeyValuePair<string, object?>("direction", "up"));
        _bytes.Add(figures.BytesDown, run, new KeyValuePair<string, object?>("direction", "down"));
        if (figures.Rejected > 0)
        {
            _rejected.Add(figures.Rejected, run);
        }

        _aggregation.Record(figures.AggregationSeconds, run);
        _roundDuration.Record(figures.WallSeconds, run);
        _round.Record(figures.Round, run);
        if (figures.Epsilon is { } epsilon)
        {
            _epsilon.Record(epsilon, run);
        }
    }

    /// <summary>Records the state run <paramref name="runLabel"/> resumed from (the round and ε restored).</summary>
    public void Resumed(int round, double? epsilon, string runLabel = ConfiguredRun)
    {
        var run = Run(runLabel);
        _round.Record(round, run);
        if (epsilon is { } e)
        {
            _epsilon.Record(e, run);
        }
    }

    /// <summary>The <c>run</c> label of the configured run.</summary>
    public const string ConfiguredRun = "configured";

    private static KeyValuePair<string, object?> Run(string run) => new("run", run);
}

/// <summary>One round's figures for <see cref="CoordinatorMetrics.RoundFinished"/>.</summary>
/// <param name="Round">The round.</param>
/// <param name="Ok">True when the round released a new global model.</param>
/// <param name="Participants">Accepted results.</param>
/// <param name="Rejected">Updates rejected at upload or by the aggregation rule.</param>
/// <param name="BytesUp">Wire bytes from agents.</param>
/// <param name="BytesDown">Wire bytes to agents.</param>
/// <param name="AggregationSeconds">Aggregation time.</param>
/// <param name="WallSeconds">The round's wall time.</param>
/// <param name="Epsilon">ε spent after the round; null without differential privacy.</param>
/// <param name="Run">The <c>run</c> label: <see cref="CoordinatorMetrics.ConfiguredRun"/> or a submitted run's id.</param>
internal sealed record RoundFigures(int Round, bool Ok, int Participants, int Rejected, long BytesUp, long BytesDown, double AggregationSeconds, double WallSeconds, double? Epsilon, string Run = CoordinatorMetrics.ConfiguredRun);
