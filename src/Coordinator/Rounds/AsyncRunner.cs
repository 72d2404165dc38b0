using System.Diagnostics;
using System.Globalization;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.State;
using Federated.Coordinator.Telemetry;
using Federated.Coordinator.Transfers;
using Federated.Learning.Asynchronous;
using Federated.Learning.Data.Partitioning;
using Federated.Learning.Privacy;
using Federated.Learning.Strategies;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Rounds;

/// <summary>
/// The asynchronous loop (<c>Coordinator:Mode=fedbuff</c>, FedBuff, Nguyen et al. 2022): keeps up to
/// <see cref="AsyncSettings.Concurrency"/> connected agents training, each on the newest global version when its task
/// starts (the task's <c>round</c> is that base version, and the agent's result and upload carry it back); every result
/// goes to a <see cref="FedBuffBuffer"/>, and each time it holds K updates the buffer is flushed into a new global
/// version, which is evaluated, checkpointed and written as one metrics row (<see cref="CoordinatorOptions.Rounds"/>
/// counts flushes). Tasks, transfers, uploads and codecs are the synchronous loop's; only the loop differs.
/// </summary>
/// <remarks>
/// With <c>Coordinator:VirtualClock</c> on, each task finishes at its virtual start plus the agent's drawn compute time,
/// and results are applied in the order of those times (a result that arrives early waits until every task due before
/// it has been applied), so the run is the one a federation of agents with those speeds would have produced, whatever
/// the wall-clock order. Secure aggregation is synchronous-only and refused with this mode.
/// </remarks>
internal sealed partial class AsyncRunner(
    IOptions<CoordinatorOptions> options,
    AgentRegistry registry,
    IAgentActivator activator,
    TransferHub transfers,
    RoundEvents events,
    ServerModel server,
    IRoundStateStore store,
    RunStatus status,
    CoordinatorMetrics metrics,
    VirtualClock virtualClock,
    RunControl control,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<AsyncRunner> logger) : RunLoopService
{
    private const string StrategyName = "fedbuff";
    private readonly CoordinatorOptions _options = options.Value;
    private readonly RoundCompression _compression = new(options.Value.Compression, options.Value.Seed, options.Value.ChunkBytes);
    private readonly Dictionary<string, Dispatch> _inFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<int, (SealedPayload Payload, int Users)> _models = [];
    private readonly List<IReadOnlyDictionary<string, string>> _history = [];
    private readonly List<(double Loss, long Examples)> _losses = [];
    private double _slowestTrain;
    private FedBuffBuffer _buffer = null!;
    private PrivacyLedger? _ledger;
    private float[] _global = [];
    private string _runId = "";
    private long _dispatched;

    private sealed class Dispatch(string taskId, int baseVersion, double virtualFinish, long startedAt)
    {
        public string TaskId { get; } = taskId;

        public int BaseVersion { get; } = baseVersion;

        public double VirtualFinish { get; } = virtualFinish;

        public long StartedAt { get; } = startedAt;

        public TaskResult? Result { get; set; }
    }

    /// <inheritdoc />
    protected override AgentRegistry Registry => registry;

    /// <inheritdoc />
    protected override RunControl Control => control;

    /// <summary>The run's connected agents (those no submitted run claims).</summary>
    private List<string> Connected() => registry.ConnectedIds().Where(control.Includes).ToList();

    /// <inheritdoc />
    protected override RoundEvents Events => events;

    /// <inheritdoc />
    protected override IHostApplicationLifetime Lifetime => lifetime;

    /// <inheritdoc />
    protected override void OnRunFailed(Exception exception) => LogRunFailed(logger, exception.Message, exception);

    /// <inheritdoc />
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        if (_options.Resume && store.TryLoad() is { } checkpoint)
        {
            throw new InvalidDataException(
                $"'{_options.StateDirectory}' holds a checkpoint of run '{checkpoint.RunId}' (round {checkpoint.Round}): a fedbuff run does not resume (its in-flight tasks and buffer are not checkpointed); move it away or set Coordinator:Resume=false.");
        }

        var layout = server.Weights.Layout;
        var privacy = _options.Privacy;
        ChaCha20Random? noise = null;
        if (privacy.Enabled)
        {
            _ledger = new PrivacyLedger();
            noise = privacy.Seed.Length > 0 ? ChaCha20Random.FromSeed("fedbuff-noise:" + privacy.Seed) : ChaCha20Random.FromEntropy();
        }

        var bufferOptions = _options.Async.ToOptions(privacy.Enabled ? privacy.ClipBound : 0, privacy.Enabled ? privacy.NoiseMultiplier : 0);
        _global = server.Initial.ToArray();
        _buffer = new FedBuffBuffer(bufferOptions, _global.Length, 0, _ledger, noise);
        _runId = $"run-{Guid.NewGuid():N}"[..16];
        status.RunId = _runId;
        status.TotalRounds = _options.Rounds;
        var weighting = bufferOptions.Staleness.ToString();
        LogStarted(logger, _runId, server.ModelName, layout.TotalLength, bufferOptions.BufferSize, _options.Async.Concurrency, bufferOptions.MaxStaleness,
            weighting, bufferOptions.ServerLearningRate, virtualClock.Enabled ? "virtual" : "wall");
        if (_ledger is not null)
        {
            LogPrivacy(logger, bufferOptions.ClipBound, bufferOptions.NoiseMultiplier, bufferOptions.MaxContributionsPerFlush, bufferOptions.MaxContributionsPerAgent, privacy.Delta);
        }

        if (await server.EvaluateAsync(_global, stoppingToken).ConfigureAwait(false) is { } initial)
        {
            LogInitialEvaluation(logger, initial.Accuracy, initial.Loss);
        }

        await WaitForAgentsAsync(stoppingToken).ConfigureAwait(false);
        var flushStarted = time.GetTimestamp();
        var (failures, rejectedOther, dispatchedSince) = (0, 0, 0L);
        var staleBefore = _buffer.RejectedStale;
        var capBefore = _buffer.RejectedOverCap;
        var aggregateTicks = 0L;
        FillSlots();
        while (_buffer.Version < _options.Rounds)
        {
            stoppingToken.ThrowIfCancellationRequested();
            if (_inFlight.Count == 0 && !FillSlots())
            {
                // Paused: what was in flight has come back; nothing new goes out until the run resumes.
                await control.WaitWhilePausedAsync(stoppingToken).ConfigureAwait(false);
                await WaitForAgentsAsync(stoppingToken).ConfigureAwait(false);
                FillSlots();
                continue;
            }

            RoundEvent? next = null;
            using (var tick = new CancellationTokenSource(TimeSpan.FromSeconds(1), time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, tick.Token))
            {
                try
                {
                    next = await events.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (tick.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                }
            }

            switch (next)
            {
                case ResultReceived { Result: var result } received when _inFlight.TryGetValue(received.AgentId, out var dispatch) && dispatch.TaskId == result.TaskId:
                    dispatch.Result = result;
                    break;
                case ResultReceived late:
                    DropLate(late);
                    break;
                case AgentChanged { Connected: false } gone when _inFlight.TryGetValue(gone.AgentId, out var lost) && !registry.IsConnected(gone.AgentId):
                    Forget(gone.AgentId, lost);
                    failures++;
                    LogTaskFailed(logger, gone.AgentId, lost.TaskId, "disconnected while training");
                    break;
                default:
                    break;
            }

            // Tasks past the deadline (wall clock) are given up, so that a vanished agent cannot hold the virtual clock.
            foreach (var (agentId, overdue) in _inFlight.Where(kv => kv.Value.Result is null && time.GetElapsedTime(kv.Value.StartedAt).TotalSeconds > _options.RoundDeadlineSeconds).ToList())
            {
                Forget(agentId, overdue);
                registry.TrySend(agentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = overdue.TaskId, Reason = "no result before the deadline" } });
                failures++;
                LogTaskFailed(logger, agentId, overdue.TaskId, "no result before the deadline");
            }

            // Apply results in order: by virtual finishing time with the virtual clock, else as they came.
            while (NextReady() is { } ready)
            {
                var (agentId, dispatch) = ready;
                Forget(agentId, dispatch);
                if (virtualClock.Enabled)
                {
                    virtualClock.AdvanceTo(dispatch.VirtualFinish);
                }

                var result = dispatch.Result!;
                var started = Stopwatch.GetTimestamp();
                switch (Offer(agentId, dispatch, result))
                {
                    case null:
                        failures++;
                        break;
                    case Admission.Accepted:
                        _slowestTrain = Math.Max(_slowestTrain, result.Metrics.GetValueOrDefault("train_seconds"));
                        if (result.Metrics.TryGetValue("train_loss", out var loss) && double.IsFinite(loss))
                        {
                            _losses.Add((loss, result.NumExamples));
                        }

                        break;
                    case Admission.Stale or Admission.OverFlushCap or Admission.OverAgentCap:
                        break;
                    default:
                        rejectedOther++;
                        break;
                }

                aggregateTicks += Stopwatch.GetTimestamp() - started;
                if (_buffer.IsFull)
                {
                    if (_ledger is not null && privacy.EpsilonBudget > 0 && _ledger.WouldExceed(privacy.EpsilonBudget, privacy.Delta, 1.0, privacy.NoiseMultiplier))
                    {
                        var spent = _ledger.Steps == 0 ? 0 : _ledger.Spent(privacy.Delta).Epsilon;
                        status.StopReason = string.Create(CultureInfo.InvariantCulture, $"privacy budget: flush {_buffer.Version + 1} would take ε above {privacy.EpsilonBudget:G6} (now {spent:G6})");
                        LogBudgetReached(logger, _buffer.Version + 1, spent, privacy.EpsilonBudget);
                        await FinishAsync().ConfigureAwait(false);
                        return;
                    }

                    var flushTicks = Stopwatch.GetTimestamp();
                    var flush = _buffer.Flush(_global);
                    aggregateTicks += Stopwatch.GetTimestamp() - flushTicks;
                    await RecordFlushAsync(flush, time.GetElapsedTime(flushStarted).TotalSeconds, Stopwatch.GetElapsedTime(0, aggregateTicks).TotalSeconds,
                        _dispatched - dispatchedSince, failures, rejectedOther, _buffer.RejectedStale - staleBefore, _buffer.RejectedOverCap - capBefore, stoppingToken).ConfigureAwait(false);
                    (failures, rejectedOther, dispatchedSince, aggregateTicks) = (0, 0, _dispatched, 0);
                    (staleBefore, capBefore) = (_buffer.RejectedStale, _buffer.RejectedOverCap);
                    flushStarted = time.GetTimestamp();
                    RetireModels();
                    if (_buffer.Version >= _options.Rounds)
                    {
                        break;
                    }
                }

                // At once, as a device would: the next task starts at this result's virtual time, so it may finish
                // before results that are already in.
                FillSlots();
            }

            if (_buffer.Version < _options.Rounds)
            {
                FillSlots();
            }
        }

        await FinishAsync().ConfigureAwait(false);
    }

    /// <summary>The in-flight task to apply next, if its result is in: the earliest virtual finish with the virtual clock, else any that arrived.</summary>
    private (string AgentId, Dispatch Dispatch)? NextReady()
    {
        if (!virtualClock.Enabled)
        {
            var arrived = _inFlight.FirstOrDefault(kv => kv.Value.Result is not null);
            return arrived.Value is null ? null : (arrived.Key, arrived.Value);
        }

        var first = _inFlight.OrderBy(kv => kv.Value.VirtualFinish).ThenBy(kv => kv.Key, StringComparer.Ordinal).FirstOrDefault();
        return first.Value is { Result: not null } ? (first.Key, first.Value) : null;
    }

    /// <summary>Offers a result to the buffer; null when it failed or its upload could not be read.</summary>
    private Admission? Offer(string agentId, Dispatch dispatch, TaskResult result)
    {
        if (!result.Ok)
        {
            LogTaskFailed(logger, agentId, dispatch.TaskId, result.Error);
            return null;
        }

        if (result.Round != dispatch.BaseVersion)
        {
            Reject(agentId, result, string.Create(CultureInfo.InvariantCulture, $"the result says base version {result.Round}, the task was sent version {dispatch.BaseVersion}"));
            return null;
        }

        byte[] bytes;
        try
        {
            bytes = transfers.TakeCompleted(agentId, result.UploadTransferId);
        }
        catch (TransferException e)
        {
            Reject(agentId, result, e.Message);
            return null;
        }

        var staleness = _buffer.Version - dispatch.BaseVersion;
        if (staleness > _buffer.Options.MaxStaleness)
        {
            // Counted by the buffer without decoding what it would throw away.
            var stale = _buffer.Offer(agentId, dispatch.BaseVersion, new float[_global.Length]);
            Reject(agentId, result, string.Create(CultureInfo.InvariantCulture, $"stale: trained on version {dispatch.BaseVersion}, {staleness} versions behind (maximum {_buffer.Options.MaxStaleness})"));
            return stale;
        }

        try
        {
            var layout = server.Weights.Layout;
            var payload = PayloadCodec.Parse(bytes, layout.Fingerprint);
            var delta = RoundCompression.ReadDelta(payload, layout.TotalLength);
            var admission = _buffer.Offer(agentId, dispatch.BaseVersion, delta);
            if (admission != Admission.Accepted)
            {
                Reject(agentId, result, $"refused by the buffer: {admission}");
            }
            else
            {
                LogAccepted(logger, agentId, dispatch.BaseVersion, staleness, _buffer.Count, _buffer.Options.BufferSize);
            }

            return admission;
        }
        catch (Exception e) when (e is TransferException or ArgumentException)
        {
            Reject(agentId, result, e.Message);
            return null;
        }
    }

    private void Reject(string agentId, TaskResult result, string reason)
    {
        registry.TrySend(agentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = result.TaskId, Reason = reason } });
        LogRejected(logger, agentId, result.Round, reason);
    }

    /// <summary>Hands tasks to idle connected agents until <see cref="AsyncSettings.Concurrency"/> are busy; false when none could be sent.</summary>
    private bool FillSlots()
    {
        var sent = false;
        if (control.State == RunStates.Paused)
        {
            return false;
        }

        // An agent whose update is already in the buffer waits for the flush: a second one would be refused by the cap.
        var idle = Connected().Where(id => !_inFlight.ContainsKey(id) && _buffer.CanContributeNow(id)).Order(StringComparer.Ordinal).ToList();
        while (_inFlight.Count < _options.Async.Concurrency && idle.Count > 0)
        {
            var pick = new StableRandom(unchecked((ulong)_options.Seed * 1_000_003UL + (ulong)_dispatched + 0xA5C0UL)).Next(idle.Count);
            var agentId = idle[pick];
            idle.RemoveAt(pick);
            sent |= Send(agentId);
        }

        return sent;
    }

    private bool Send(string agentId)
    {
        var version = _buffer.Version;
        var layout = server.Weights.Layout;
        if (!_models.TryGetValue(version, out var model))
        {
            var payload = new Payload { LayoutFingerprint = layout.Fingerprint };
            PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, _global);
            model = (new SealedPayload($"{_runId}-v{version}-global", payload, _options.ChunkBytes), 0);
            transfers.Publish(model.Payload);
        }

        var sequence = _dispatched++;
        var task = new TrainTask
        {
            TaskId = string.Create(CultureInfo.InvariantCulture, $"v{version}-t{sequence}-{agentId}"),
            Round = version,
            Model = model.Payload.ToRef(),
            ModelName = server.ModelName,
            LayoutFingerprint = layout.Fingerprint,
            DeadlineUnixSeconds = time.GetUtcNow().AddSeconds(_options.RoundDeadlineSeconds).ToUnixTimeMilliseconds() / 1000.0,
            Training = new TrainingConfig
            {
                Epochs = _options.Training.Epochs,
                BatchSize = _options.Training.BatchSize,
                Optimizer = _options.Training.Optimizer.Trim().ToLowerInvariant(),
                LearningRate = _options.Training.LearningRate,
                Momentum = _options.Training.Momentum,
                WeightDecay = _options.Training.WeightDecay,
                GradientClipNorm = _options.Training.GradientClipNorm,
                Seed = unchecked((int)(_options.Seed * 7919 + sequence)),
            },
        };
        _compression.ConfigureUpload(task.Config);
        if (!registry.TrySend(agentId, new CoordinatorMessage { Train = task }))
        {
            _models[version] = model;
            return false;
        }

        _models[version] = (model.Payload, model.Users + 1);
        var finish = virtualClock.Enabled ? virtualClock.Now + virtualClock.ComputeSeconds(agentId) : 0;
        _inFlight[agentId] = new Dispatch(task.TaskId, version, finish, time.GetTimestamp());
        return true;
    }

    private void Forget(string agentId, Dispatch dispatch)
    {
        _inFlight.Remove(agentId);
        activator.Release(agentId);
        if (_models.TryGetValue(dispatch.BaseVersion, out var model))
        {
            _models[dispatch.BaseVersion] = (model.Payload, model.Users - 1);
        }

        RetireModels();
    }

    /// <summary>Retires the payloads of old versions no task still downloads.</summary>
    private void RetireModels()
    {
        foreach (var (version, model) in _models.Where(kv => kv.Key < _buffer.Version && kv.Value.Users <= 0).ToList())
        {
            transfers.Retire(model.Payload.TransferId);
            _models.Remove(version);
        }

        // Uploads of versions older than any update the buffer would still take.
        transfers.PurgeUploads(_buffer.Version - _buffer.Options.MaxStaleness - 1, control.Includes);
    }

    private async Task RecordFlushAsync(FlushResult flush, double wall, double aggregateSeconds, long dispatched, int failures, int rejectedOther, long rejectedStale, long rejectedCap, CancellationToken stoppingToken)
    {
        var version = flush.Version;
        status.CurrentRound = version;
        var evaluateStarted = Stopwatch.GetTimestamp();
        var evaluation = await server.EvaluateAsync(_global, stoppingToken).ConfigureAwait(false);
        var evaluateSeconds = Stopwatch.GetElapsedTime(evaluateStarted).TotalSeconds;
        var checksum = RoundRunner.Checksum(_global);
        double? epsilon = _ledger is null ? null : _ledger.Spent(_options.Privacy.Delta).Epsilon;
        var trainLoss = _losses.Count > 0 ? _losses.Sum(c => c.Loss * c.Examples) / Math.Max(1, _losses.Sum(c => c.Examples)) : double.NaN;
        _losses.Clear();
        _slowestTrain = 0;
        var counts = transfers.TakeCounters(control.Includes).Values.Where(c => c.DownWire + c.UpWire > 0).ToList();
        var rejected = (int)(rejectedStale + rejectedCap) + rejectedOther;
        var row = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["round"] = Inv(version),
            ["wall_s"] = Inv(wall, "F3"),
            ["slowest_train_s"] = Inv(_slowestTrain, "F3"),
            ["aggregate_s"] = Inv(aggregateSeconds, "F3"),
            ["evaluate_s"] = Inv(evaluateSeconds, "F3"),
            ["selected"] = Inv(dispatched, "F0"),
            ["results"] = Inv(flush.Updates),
            ["failures"] = Inv(failures),
            ["rejected"] = Inv(rejected),
            ["rejected_stale"] = Inv(rejectedStale, "F0"),
            ["rejected_cap"] = Inv(rejectedCap, "F0"),
            ["mean_staleness"] = Inv(flush.MeanStaleness, "F3"),
            ["max_staleness"] = Inv(flush.MaxStaleness),
            ["mean_staleness_weight"] = Inv(flush.MeanWeight, "F5"),
            ["in_flight"] = Inv(_inFlight.Count),
            ["late"] = "0",
            ["ok"] = "true",
            ["train_loss"] = Inv(trainLoss, "F5"),
            ["test_loss"] = Inv(evaluation?.Loss ?? double.NaN, "F5"),
            ["test_accuracy"] = Inv(evaluation?.Accuracy ?? double.NaN, "F5"),
            ["down_payload_bytes_per_agent"] = Inv(counts.Count > 0 ? counts.Average(c => c.DownPayload) : 0, "F0"),
            ["down_wire_bytes_per_agent"] = Inv(counts.Count > 0 ? counts.Average(c => c.DownWire) : 0, "F0"),
            ["up_payload_bytes_per_agent"] = Inv(counts.Count > 0 ? counts.Average(c => c.UpPayload) : 0, "F0"),
            ["up_wire_bytes_per_agent"] = Inv(counts.Count > 0 ? counts.Average(c => c.UpWire) : 0, "F0"),
            ["down_wire_bytes_total"] = Inv(counts.Sum(c => (double)c.DownWire), "F0"),
            ["up_wire_bytes_total"] = Inv(counts.Sum(c => (double)c.UpWire), "F0"),
            ["peak_rss_mb"] = Inv(Learning.Runtime.ProcessMemory.PeakRssMegabytes(), "F1"),
            ["global_sha256"] = checksum,
        };
        if (virtualClock.Enabled)
        {
            row["virtual_s"] = Inv(virtualClock.Now, "F3");
        }

        if (epsilon is { } spent)
        {
            row["epsilon"] = Inv(spent, "G8");
            LogPrivacySpent(logger, version, spent, _options.Privacy.Delta);
        }

        _history.Add(row);
        var layout = server.Weights.Layout;
        store.Save(
            new RoundCheckpoint
            {
                RunId = _runId,
                Round = version,
                Model = server.ModelName,
                LayoutFingerprint = layout.Fingerprint,
                Global = _global.ToArray(),
                Strategy = StrategyName,
                StrategyState = new Dictionary<string, float[]>(StringComparer.Ordinal),
                History = _history,
                PrivacyLedger = _ledger?.ToJson(),
                Epsilon = epsilon,
            },
            layout.Entries.Select(e => (e.Name, e.Shape.ToArray(), e.Offset, e.Length)).ToList());
        store.CompleteRound(_runId, version, row);
        MetricsCsv.Append(MetricsPath, row);
        metrics.RoundFinished(new RoundFigures(version, true, flush.Updates, rejected, counts.Sum(c => c.UpWire), counts.Sum(c => c.DownWire), aggregateSeconds, wall, epsilon));
        status.GlobalChecksum = checksum;
        status.CompletedRounds = version;
        LogFlushed(logger, version, flush.Updates, flush.MeanStaleness, rejectedStale, evaluation?.Accuracy ?? double.NaN, virtualClock.Enabled ? virtualClock.Now : double.NaN, wall);
    }

    private async Task FinishAsync()
    {
        foreach (var (agentId, dispatch) in _inFlight.ToList())
        {
            registry.TrySend(agentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = dispatch.TaskId, Reason = "the run is finished" } });
            Forget(agentId, dispatch);
        }

        foreach (var model in _models.Values)
        {
            transfers.Retire(model.Payload.TransferId);
        }

        _models.Clear();
        status.Finished = true;
        var finalChecksum = RoundRunner.Checksum(_global);
        LogFinished(logger, _runId, _buffer.Version, _buffer.RejectedStale, finalChecksum);
        if (_options.ExitWhenDone)
        {
            await FinishRunAsync(time).ConfigureAwait(false);
        }
    }

    private async Task WaitForAgentsAsync(CancellationToken stoppingToken)
    {
        using var limit = _options.WaitForAgentsSeconds > 0
            ? new CancellationTokenSource(TimeSpan.FromSeconds(_options.WaitForAgentsSeconds), time)
            : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, limit.Token);
        var logged = false;
        while (Connected().Count < _options.MinAvailable || !Connected().Any(id => !_inFlight.ContainsKey(id) && _buffer.CanContributeNow(id)))
        {
            if (!logged)
            {
                var connected = Connected().Count;
                LogWaiting(logger, connected, _options.MinAvailable);
                logged = true;
            }

            try
            {
                var next = await events.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                if (next is ResultReceived late)
                {
                    DropLate(late);
                }
            }
            catch (OperationCanceledException) when (limit.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
            {
                throw new TimeoutException($"Only {Connected().Count} of the {_options.MinAvailable} agents needed (with one able to contribute) were available within {_options.WaitForAgentsSeconds} s.");
            }
        }
    }

    private void DropLate(ResultReceived late)
    {
        transfers.Discard(late.AgentId, late.Result.UploadTransferId);

        registry.TrySend(late.AgentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = late.Result.TaskId, Reason = "no such task in flight" } });
        LogLate(logger, late.AgentId, late.Result.TaskId);
    }

    private string MetricsPath => Path.IsPathRooted(_options.MetricsFile) ? _options.MetricsFile : Path.Combine(_options.StateDirectory, _options.MetricsFile);

    [LoggerMessage(EventId = 1400, Level = LogLevel.Information, Message = "Run {RunId} (fedbuff): model {Model} ({Floats} floats), buffer K = {BufferSize}, concurrency {Concurrency}, maximum staleness {MaxStaleness}, weighting {Weighting}, server learning rate {ServerLearningRate}, {Clock} clock")]
    private static partial void LogStarted(ILogger logger, string runId, string model, long floats, int bufferSize, int concurrency, int maxStaleness, string weighting, double serverLearningRate, string clock);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Central DP under asynchrony: clip bound {ClipBound:G6}, noise multiplier {NoiseMultiplier:G6}, at most {PerFlush} updates per agent per flush and {PerAgent} over the run (0 = no cap); each flush is one step with q = 1 (no sampling amplification), δ = {Delta:G3}")]
    private static partial void LogPrivacy(ILogger logger, double clipBound, double noiseMultiplier, int perFlush, long perAgent, double delta);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Information, Message = "Version 0 (initial model): test accuracy {Accuracy:P2}, loss {Loss:F4}")]
    private static partial void LogInitialEvaluation(ILogger logger, double accuracy, double loss);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Information, Message = "Waiting for agents: {Connected} of {Needed} connected")]
    private static partial void LogWaiting(ILogger logger, int connected, int needed);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Debug, Message = "Update of agent {AgentId} (base version {BaseVersion}, staleness {Staleness}) buffered: {Count} of {BufferSize}")]
    private static partial void LogAccepted(ILogger logger, string agentId, int baseVersion, int staleness, int count, int bufferSize);

    [LoggerMessage(EventId = 1405, Level = LogLevel.Information, Message = "Version {Version}: {Updates} updates applied (mean staleness {MeanStaleness:F2}, {RejectedStale} rejected as stale), test accuracy {Accuracy:P2}, virtual time {VirtualSeconds:F1} s, wall {WallSeconds:F2} s")]
    private static partial void LogFlushed(ILogger logger, int version, int updates, double meanStaleness, long rejectedStale, double accuracy, double virtualSeconds, double wallSeconds);

    [LoggerMessage(EventId = 1406, Level = LogLevel.Warning, Message = "Task {TaskId} of agent {AgentId} failed: {Reason}")]
    private static partial void LogTaskFailed(ILogger logger, string agentId, string taskId, string reason);

    [LoggerMessage(EventId = 1407, Level = LogLevel.Information, Message = "Update of agent {AgentId} (base version {BaseVersion}) rejected: {Reason}")]
    private static partial void LogRejected(ILogger logger, string agentId, int baseVersion, string reason);

    [LoggerMessage(EventId = 1408, Level = LogLevel.Information, Message = "Result of agent {AgentId} for task {TaskId}, which is not in flight, dropped")]
    private static partial void LogLate(ILogger logger, string agentId, string taskId);

    [LoggerMessage(EventId = 1409, Level = LogLevel.Information, Message = "Version {Version}: privacy spent ε = {Epsilon:G6} at δ = {Delta:G3}")]
    private static partial void LogPrivacySpent(ILogger logger, int version, double epsilon, double delta);

    [LoggerMessage(EventId = 1410, Level = LogLevel.Warning, Message = "Privacy budget reached: flush {Version} would take ε from {Epsilon:G6} above the budget {Budget:G6}; the run stops here")]
    private static partial void LogBudgetReached(ILogger logger, int version, double epsilon, double budget);

    [LoggerMessage(EventId = 1411, Level = LogLevel.Information, Message = "Run {RunId} finished at version {Version} ({RejectedStale} stale updates rejected in all; global {Checksum})")]
    private static partial void LogFinished(ILogger logger, string runId, int version, long rejectedStale, string checksum);

    [LoggerMessage(EventId = 1412, Level = LogLevel.Critical, Message = "The run stopped: {Reason}")]
    private static partial void LogRunFailed(ILogger logger, string reason, Exception exception);
}
