using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Privacy;
using Federated.Coordinator.State;
using Federated.Coordinator.Telemetry;
using Federated.Coordinator.Transfers;
using Federated.Learning.Data.Partitioning;
using Federated.Learning.Privacy;
using Federated.Learning.Reporting;
using Federated.Learning.SecureAggregation;
using Federated.Learning.Strategies;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Rounds;

/// <summary>
/// The round loop: waits for agents, samples a cohort, ships the global model, collects updates until the target
/// count or the deadline, aggregates them through the strategy, evaluates, checkpoints, and records metrics.
/// It owns the global model; gRPC handlers only post events to it.
/// </summary>
internal sealed partial class RoundRunner(
    IOptions<CoordinatorOptions> options,
    AgentRegistry registry,
    IAgentActivator activator,
    TransferHub transfers,
    RoundEvents events,
    ServerModel server,
    IRoundStateStore store,
    RunStatus status,
    RoundHistory history,
    CoordinatorMetrics metrics,
    VirtualClock virtualClock,
    RunControl control,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<RoundRunner> logger) : RunLoopService
{
    private readonly CoordinatorOptions _options = options.Value;
    private readonly bool _sampleEnrolled = options.Value.Population == "enrolled";
    private readonly List<IReadOnlyDictionary<string, string>> _history = [];
    private CoordinatorPrivacy? _privacy;
    private PrivacyLedger? _secureLedger;
    private readonly RoundCompression _compression = new(options.Value.Compression, options.Value.Seed, options.Value.ChunkBytes);
    private int _lateResults;
    private readonly Dictionary<string, long> _retiring = new(StringComparer.Ordinal);

    /// <inheritdoc />
    protected override AgentRegistry Registry => registry;

    /// <inheritdoc />
    protected override RoundEvents Events => events;

    /// <inheritdoc />
    protected override RunControl Control => control;

    /// <inheritdoc />
    protected override IHostApplicationLifetime Lifetime => lifetime;

    /// <inheritdoc />
    protected override void OnRunFailed(Exception exception) => LogRunFailed(logger, exception.Message, exception);

    /// <inheritdoc />
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var strategy = StrategyFactory.Create(_options.Strategy, _options.StrategyOptions);
        // A FedPer head is checked against the model once, on start, rather than failing every agent in every round.
        if (Learning.Personalization.FedPer.FromConfig(strategy.ConfigureFit(1)) is { } head)
        {
            try
            {
                head.Resolve(server.Weights.Layout);
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"Coordinator:StrategyOptions: {e.Message}", e);
            }
        }

        var checkpoint = _options.Resume ? store.TryLoad() : null;
        _privacy = CoordinatorPrivacy.Create(_options);
        var dp = _privacy?.Wrap(strategy, checkpoint?.PrivacyLedger);
        strategy = (IStrategy?)dp ?? strategy;
        _secureLedger = SecureNoiseLedger(checkpoint?.PrivacyLedger);
        if (_options.Continual.ConsolidateFisher)
        {
            strategy = new Learning.Continual.FisherConsolidationStrategy(strategy);
        }
        if (_options.RosterFile.Length > 0)
        {
            var ids = File.ReadLines(_options.RosterFile).Select(l => l.Split('#')[0].Trim()).Where(l => l.Length > 0).ToList();
            var added = registry.Preregister(ids);
            LogRoster(logger, _options.RosterFile, ids.Count, added);
        }

        var layout = server.Weights.Layout;
        float[] global;
        int firstRound;
        string runId;
        if (checkpoint is not null)
        {
            if (checkpoint.LayoutFingerprint != layout.Fingerprint || checkpoint.Global.Length != layout.TotalLength)
            {
                throw new InvalidDataException(
                    $"The checkpoint in '{_options.StateDirectory}' is for model '{checkpoint.Model}' (layout {checkpoint.LayoutFingerprint}), not '{server.ModelName}' (layout {layout.Fingerprint}); move it away or set Coordinator:Resume=false.");
            }

            if (checkpoint.Strategy != strategy.Name)
            {
                throw new InvalidDataException($"The checkpoint was written by strategy '{checkpoint.Strategy}', not '{strategy.Name}'.");
            }

            if ((dp is not null || _secureLedger is not null) && checkpoint.PrivacyLedger is null)
            {
                throw new InvalidDataException($"The checkpoint of differentially private run '{checkpoint.RunId}' lacks its privacy ledger: ε spent so far is unknown.");
            }

            global = checkpoint.Global;
            strategy.LoadState(checkpoint.StrategyState);
            firstRound = checkpoint.Round + 1;
            runId = checkpoint.RunId;
            _history.AddRange(checkpoint.History);
            history.Restore(checkpoint.History);
            var checksum = Checksum(global);
            status.GlobalChecksum = checksum;
            status.CompletedRounds = checkpoint.Round;
            LogResumed(logger, runId, checkpoint.Round, checksum);

            // rounds.csv follows the store: a crash after a round's commit but before its row reached the CSV left the
            // row out; a crash mid-round may have left nothing of that round. Rows the CSV has are kept as they are.
            var (restored, dropped) = MetricsCsv.Reconcile(MetricsPath, checkpoint.History);
            if (restored + dropped > 0)
            {
                LogMetricsReconciled(logger, MetricsPath, restored, dropped);
            }

            metrics.Resumed(checkpoint.Round, dp is null ? SecureEpsilon() : SpentEpsilon(dp), control.RunId ?? CoordinatorMetrics.ConfiguredRun);
        }
        else
        {
            global = server.Initial;
            firstRound = 1;
            runId = control.RunId ?? $"run-{Guid.NewGuid():N}"[..16];
            LogStarted(logger, runId, server.ModelName, layout.TotalLength, strategy.Name, server.Compute.Description);

            // Round 0, as in Flower: the initial model's held-out metrics (this also warms the evaluation thread).
            if (await server.EvaluateAsync(global, stoppingToken).ConfigureAwait(false) is { } initial)
            {
                LogInitialEvaluation(logger, initial.Accuracy, initial.Loss);
            }
        }

        if (_secureLedger is not null)
        {
            var noise = _options.SecureAggregation.Noise;
            var fitted = CheckNoiseFitsTheRing((int)layout.TotalLength);
            var spentSoFar = SecureEpsilon() ?? 0;
            LogDistributedNoise(logger, noise.Multiplier, noise.L2Clip, noise.Delta, fitted.Scale, fitted.MinSurvivors, fitted.MaxAgents, _secureLedger.Steps, spentSoFar);
        }

        status.RunId = runId;
        status.TotalRounds = _options.Rounds;
        status.CurrentRound = firstRound - 1;
        if (dp is not null)
        {
            var o = dp.Options;
            var (updateNoise, steps, spent) = (o.UpdateNoiseMultiplier, dp.Ledger.Steps, SpentEpsilon(dp));
            LogPrivacy(logger, o.SampleRate, o.NoiseMultiplier, updateNoise, o.ClipBound, o.Adaptive is null ? "fixed" : "adaptive", o.ClipOnAgents ? "agents" : "coordinator",
                o.Delta, o.EpsilonBudget ?? double.PositiveInfinity, _privacy!.Seeded ? "a configured seed (reproducible, not private)" : "OS entropy", steps, spent);
        }

        for (var round = firstRound; round <= _options.Rounds; round++)
        {
            stoppingToken.ThrowIfCancellationRequested();
            if (dp is { NextRoundExceedsBudget: true })
            {
                // Checked before sampling: a round that would take ε above the budget never starts.
                var spent = SpentEpsilon(dp);
                var next = dp.Ledger.SpentAfter(dp.Options.Delta, dp.Options.SampleRate, dp.Options.NoiseMultiplier).Epsilon;
                status.StopReason = string.Create(CultureInfo.InvariantCulture,
                    $"privacy budget: round {round} would take ε from {spent:G6} to {next:G6}, above the budget {dp.Options.EpsilonBudget:G6} at δ = {dp.Options.Delta:G3}");
                LogBudgetReached(logger, round, spent, next, dp.Options.EpsilonBudget!.Value, dp.Options.Delta);
                break;
            }

            await control.WaitWhilePausedAsync(stoppingToken).ConfigureAwait(false);
            await WaitForAgentsAsync(stoppingToken).ConfigureAwait(false);
            status.CurrentRound = round;
            global = await RunRoundAsync(runId, round, strategy, global, stoppingToken).ConfigureAwait(false);
        }

        status.Finished = true;
        var finalChecksum = Checksum(global);
        LogFinished(logger, runId, status.CompletedRounds, finalChecksum);
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
        while (Available().Count < _options.MinAvailable)
        {
            if (!logged)
            {
                var connected = Available().Count;
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
                throw new TimeoutException($"Only {Available().Count} of the {_options.MinAvailable} agents needed were available within {_options.WaitForAgentsSeconds} s.");
            }
        }
    }

    /// <summary>The agents a round samples from: those connected, or every known agent (<c>Population=enrolled</c>).</summary>
    private List<string> Available() => (_sampleEnrolled ? registry.KnownIds() : registry.ConnectedIds()).Where(control.Includes).ToList();

    private async Task<float[]> RunRoundAsync(string runId, int round, IStrategy strategy, float[] global, CancellationToken stoppingToken)
    {
        var started = time.GetTimestamp();
        var layout = server.Weights.Layout;
        var available = Available();
        int target;
        List<string> selected;
        if (_privacy is not null)
        {
            // Poisson sampling, as the accountant assumes: every agent of the population independently with probability q,
            // no over-selection, no replacement of dropouts; the round waits for all of them (until the deadline).
            selected = [.. _privacy.Sample(available, round)];
            target = selected.Count;
        }
        else
        {
            target = Math.Min(available.Count, Math.Max(_options.MinFit, (int)Math.Ceiling(_options.FractionFit * available.Count)));
            var asked = Math.Min(available.Count, target + _options.OverSelect);
            var cohort = available.ToArray();
            new StableRandom(unchecked((ulong)_options.Seed * 1_000_003UL + (ulong)round)).Shuffle(cohort.AsSpan());
            selected = cohort.Take(asked).Order(StringComparer.Ordinal).ToList();
        }

        var payload = new Payload { LayoutFingerprint = layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, global);
        foreach (var (name, values) in strategy.ServerTensors(round))
        {
            PayloadCodec.AddDense(payload, name, values);
        }

        _compression.StampShared(payload, runId, round);
        var sealedPayload = new SealedPayload($"{runId}-r{round}-global", payload, _options.ChunkBytes);
        transfers.Publish(sealedPayload);
        var deadlineUnix = time.GetUtcNow().AddSeconds(_options.RoundDeadlineSeconds).ToUnixTimeMilliseconds() / 1000.0;
        var config = strategy.ConfigureFit(round);
        var pending = new Dictionary<string, string>(StringComparer.Ordinal);
        var sentTasks = new Dictionary<string, CoordinatorMessage>(StringComparer.Ordinal);
        var absent = new HashSet<string>(StringComparer.Ordinal);
        var failures = new List<ClientFailure>();
        var offline = new List<string>();
        var secure = _options.SecureAggregation.Enabled
            ? new SecureRound(_options.SecureAggregation, registry, transfers, events, time, logger, round, selected, checked((int)layout.TotalLength), layout.Fingerprint)
            : null;
        foreach (var agentId in selected)
        {
            var model = _compression.ModelFor(agentId, runId, round, global, payload, sealedPayload, transfers);
            var task = new TrainTask
            {
                TaskId = $"{control.TaskPrefix}r{round}-{agentId}",
                Round = round,
                Model = model.ToRef(),
                ModelName = server.ModelName,
                LayoutFingerprint = layout.Fingerprint,
                DeadlineUnixSeconds = deadlineUnix,
                Training = new TrainingConfig
                {
                    Epochs = _options.Training.Epochs,
                    BatchSize = _options.Training.BatchSize,
                    Optimizer = _options.Training.Optimizer.Trim().ToLowerInvariant(),
                    LearningRate = _options.Training.LearningRate,
                    Momentum = _options.Training.Momentum,
                    WeightDecay = _options.Training.WeightDecay,
                    GradientClipNorm = _options.Training.GradientClipNorm,
                    Seed = unchecked(_options.Seed * 7919 + round),
                },
            };
            foreach (var (key, value) in config)
            {
                task.Config[key] = value;
            }

            _compression.ConfigureUpload(task.Config);
            task.Secagg = secure?.SetupFor(agentId);

            var message = new CoordinatorMessage { Train = task };
            long? closing = _retiring.Remove(agentId, out var session) && registry.Find(agentId)?.Connection?.Number == session ? session : null;
            if (_sampleEnrolled && (!registry.IsConnected(agentId) || closing is not null))
            {
                registry.SendOrHold(agentId, message, closing);
                pending[agentId] = task.TaskId;
                offline.Add(agentId);
            }
            else if (registry.TrySend(agentId, message))
            {
                pending[agentId] = task.TaskId;
                sentTasks[agentId] = message;
            }
            else
            {
                failures.Add(new ClientFailure(agentId, "disconnected before the task was sent"));
            }
        }

        if (offline.Count > 0)
        {
            activator.Activate(round, offline);
        }

        LogRoundStarted(logger, round, selected.Count, available.Count, target, sealedPayload.Bytes.Length);
        status.RoundStartedAt = time.GetUtcNow();
        status.RoundSelected = selected.Count;
        status.RoundResults = 0;
        status.RoundFailures = failures.Count;
        var aggregator = strategy.BeginRound(round, global, selected.Count, available.Count);
        if (_options.Deterministic)
        {
            aggregator = new DeterministicAggregator(aggregator);
        }

        var streaming = StreamingFolds.For(aggregator, round, _compression.UplinkEncoded);

        var lateBefore = _lateResults;
        var accepted = 0;
        var rejected = 0;
        double slowestTrain = 0;
        var aggregateTicks = 0L;
        var lastResultAt = started;
        var clientLosses = new List<(double Loss, long Examples)>();
        var agentRows = new List<Dictionary<string, string>>();
        var localAccuracies = new List<double>();
        IReadOnlyDictionary<string, string> secureMetrics = new Dictionary<string, string>();
        if (secure is not null)
        {
            // SecAgg+: the stages replace the collection of individual updates; the strategy gets only their weighted mean.
            var outcome = await secure.RunAsync(pending, failures, _options.RoundDeadlineSeconds, DropLate, _compression.Delivered, stoppingToken).ConfigureAwait(false);
            foreach (var agentId in pending.Keys)
            {
                ReleaseAgent(agentId);
            }

            pending.Clear();
            secureMetrics = outcome.Metrics;
            if (outcome.Released is { } released)
            {
                _secureLedger?.Record(released);
            }
            if (outcome.Aggregate is { } aggregate)
            {
                aggregator.Add(aggregate);
                accepted = outcome.Survivors;
                lastResultAt = time.GetTimestamp();
                slowestTrain = outcome.SlowestTrain;
                clientLosses.AddRange(outcome.Losses);
            }
        }

        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(_options.RoundDeadlineSeconds), time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, deadline.Token))
        {
            while (secure is null && accepted < target && pending.Count > 0)
            {
                RoundEvent next;
                try
                {
                    next = await events.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                    LogDeadline(logger, round, accepted, pending.Count);
                    break;
                }

                switch (next)
                {
                    case ResultReceived { Result: var result } received when result.Round == round && pending.TryGetValue(received.AgentId, out var taskId) && taskId == result.TaskId:
                        pending.Remove(received.AgentId);
                        ReleaseAgent(received.AgentId);
                        if (!result.Ok)
                        {
                            failures.Add(new ClientFailure(received.AgentId, $"training failed: {result.Error}"));
                            LogClientFailed(logger, round, received.AgentId, result.Error);
                            break;
                        }

                        _compression.Delivered(received.AgentId);
                        if (AgentRow(round, received.AgentId, result) is { } agentRow)
                        {
                            agentRows.Add(agentRow);
                            localAccuracies.Add(result.Metrics[LocalAccuracyMetric]);
                        }

                        var addStarted = Stopwatch.GetTimestamp();
                        if (TryAccept(received.AgentId, result, layout.TotalLength, layout.Fingerprint, aggregator, streaming, failures))
                        {
                            accepted++;
                            LogAccepted(logger, round, received.AgentId, result.NumExamples);
                            lastResultAt = time.GetTimestamp();
                            slowestTrain = Math.Max(slowestTrain, result.Metrics.GetValueOrDefault("train_seconds"));
                            if (result.Metrics.TryGetValue("train_loss", out var loss))
                            {
                                clientLosses.Add((loss, result.NumExamples));
                            }
                        }
                        else
                        {
                            rejected++;
                        }

                        aggregateTicks += Stopwatch.GetTimestamp() - addStarted;
                        break;
                    case ResultReceived late:
                        DropLate(late);
                        break;
                    case UploadChunkReceived chunk when streaming is not null && pending.ContainsKey(chunk.AgentId):
                        var chunkStarted = Stopwatch.GetTimestamp();
                        streaming.OnChunk(chunk);
                        aggregateTicks += Stopwatch.GetTimestamp() - chunkStarted;
                        break;
                    case AgentChanged { Connected: false } gone when _options.ReconnectGraceSeconds > 0 && pending.ContainsKey(gone.AgentId) && !registry.IsConnected(gone.AgentId) && !registry.HasHeld(gone.AgentId):
                        // A dropped link is often back in a second: the agent keeps training, and delivers its pending
                        // update first thing on its next session. Give it the grace before counting it as failed.
                        _ = EndGraceLaterAsync(gone.AgentId, round, linked.Token);
                        absent.Add(gone.AgentId);
                        break;
                    case AgentChanged { Connected: true } back when absent.Remove(back.AgentId) && pending.ContainsKey(back.AgentId) && sentTasks.TryGetValue(back.AgentId, out var again):
                        // Back within its grace. The agent may have lost its task with the session: send it again (an
                        // agent that had sealed its update delivers it first on the new session and skips the task).
                        var resent = again.Clone();
                        resent.Train.Config["resent"] = "true";
                        registry.TrySend(back.AgentId, resent);
                        break;
                    case RoundEvent { AgentId: var goneId } gone when (gone is AgentChanged { Connected: false } || gone is ReconnectGraceEnded ended && ended.Round == round)
                        && pending.ContainsKey(goneId) && !registry.IsConnected(goneId) && !registry.HasHeld(goneId):
                        // (A disconnect of an agent that is connected again, or has not come for its task yet, is stale.)
                        pending.Remove(gone.AgentId);
                        ReleaseAgent(gone.AgentId);
                        failures.Add(new ClientFailure(gone.AgentId, "disconnected during the round"));
                        LogClientFailed(logger, round, gone.AgentId, "disconnected during the round");
                        break;
                    default:
                        break;
                }

                status.RoundResults = accepted;
                status.RoundFailures = failures.Count;
            }
        }

        foreach (var (agentId, taskId) in pending)
        {
            var neverCame = registry.DropHeld(agentId);
            failures.Add(new ClientFailure(agentId, accepted >= target ? "not needed: the round reached its target" : neverCame ? "never connected for its task" : "no result before the deadline"));
            registry.TrySend(agentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = taskId, Reason = "the round closed before this result arrived" } });
            ReleaseAgent(agentId);
        }

        streaming?.AbortAll();
        if (streaming is { Committed: > 0 } or { Aborted: > 0 })
        {
            LogStreamingFolds(logger, round, streaming.Committed, streaming.Aborted);
        }

        var collectSeconds = time.GetElapsedTime(started, lastResultAt).TotalSeconds;
        var finishStarted = Stopwatch.GetTimestamp();
        // With differential privacy the noised sum is released whatever the number of results (the noise, calibrated to
        // the expected participants, protects it; a release that depended on the count would leak it), so MinFit does
        // not gate it: a round without any result releases the noise alone and is charged like any other.
        var roundOk = _privacy is not null || accepted >= Math.Min(_options.MinFit, Math.Max(1, selected.Count));
        IReadOnlyDictionary<string, double> aggregationMetrics = new Dictionary<string, double>();
        if (roundOk)
        {
            try
            {
                var outcome = aggregator.Finish(failures);
                global = outcome.Global;
                aggregationMetrics = outcome.Metrics;
                foreach (var rejection in outcome.Rejected)
                {
                    LogRejectedAtAggregation(logger, round, rejection.ClientId, rejection.Reason);
                }

                rejected += outcome.Rejected.Count;
                if (_privacy is not null && outcome.Accepted == 0)
                {
                    LogNoiseOnlyRelease(logger, round, selected.Count);
                }
            }
            catch (InvalidOperationException e)
            {
                // A robust rule's precondition (e.g. Krum's n ≥ 2f + 3) failed for this round's updates: the round
                // fails like one with too few results, and the run goes on.
                roundOk = false;
                LogAggregationFailed(logger, round, accepted, e.Message);
            }
        }
        else
        {
            LogRoundFailed(logger, round, accepted, _options.MinFit);
        }

        aggregateTicks += Stopwatch.GetTimestamp() - finishStarted;
        transfers.Retire(sealedPayload.TransferId);
        _compression.EndRound(transfers);
        transfers.PurgeUploads(round, control.Includes);

        var evaluateStarted = Stopwatch.GetTimestamp();
        var evaluation = await server.EvaluateAsync(global, stoppingToken).ConfigureAwait(false);
        var perExperience = await server.EvaluateExperiencesAsync(global, stoppingToken).ConfigureAwait(false);
        var evaluateSeconds = Stopwatch.GetElapsedTime(evaluateStarted).TotalSeconds;

        // The checkpoint, and with it the privacy ledger (ε), is on disk before the new model leaves the coordinator:
        // federated evaluation sends it out below, and the next round after this method returns. Its history row is
        // provisional; the next checkpoint carries the complete one.
        var checksum = Checksum(global);
        var dp = strategy as DifferentialPrivacyStrategy;
        double? epsilon = dp is null ? SecureEpsilon() : SpentEpsilon(dp);
        var aggregateSeconds = Stopwatch.GetElapsedTime(0, aggregateTicks).TotalSeconds;
        var trainLoss = clientLosses.Count > 0 ? clientLosses.Sum(c => c.Loss * c.Examples) / Math.Max(1, clientLosses.Sum(c => c.Examples)) : double.NaN;
        var checkpointStarted = Stopwatch.GetTimestamp();
        var provisional = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["round"] = Inv(round),
            ["collect_s"] = Inv(collectSeconds, "F3"),
            ["slowest_train_s"] = Inv(slowestTrain, "F3"),
            ["aggregate_s"] = Inv(aggregateSeconds, "F3"),
            ["evaluate_s"] = Inv(evaluateSeconds, "F3"),
            ["selected"] = Inv(selected.Count),
            ["results"] = Inv(accepted),
            ["failures"] = Inv(failures.Count),
            ["rejected"] = Inv(rejected),
            ["ok"] = roundOk ? "true" : "false",
            ["train_loss"] = Inv(trainLoss, "F5"),
            ["test_loss"] = Inv(evaluation?.Loss ?? double.NaN, "F5"),
            ["test_accuracy"] = Inv(evaluation?.Accuracy ?? double.NaN, "F5"),
            ["global_sha256"] = checksum,
        };
        if (epsilon is { } spentSoFar)
        {
            provisional["epsilon"] = Inv(spentSoFar, "G8");
        }

        for (var j = 0; j < (perExperience?.Length ?? 0); j++)
        {
            provisional[$"accuracy_exp{j}"] = Inv(perExperience![j], "F5");
        }

        _history.Add(provisional);
        store.Save(
            new RoundCheckpoint
            {
                RunId = runId,
                Round = round,
                Model = server.ModelName,
                LayoutFingerprint = layout.Fingerprint,
                Global = global,
                Strategy = strategy.Name,
                StrategyState = strategy.SaveState(),
                History = _history,
                PrivacyLedger = dp?.Ledger.ToJson() ?? _secureLedger?.ToJson(),
                Epsilon = epsilon,
            },
            layout.Entries.Select(e => (e.Name, e.Shape.ToArray(), e.Offset, e.Length)).ToList());
        var checkpointSeconds = Stopwatch.GetElapsedTime(checkpointStarted).TotalSeconds;

        var federated = await FederatedEvaluateAsync(runId, round, global, stoppingToken).ConfigureAwait(false);
        var counts = transfers.TakeCounters(control.Includes).Where(kv => selected.Contains(kv.Key)).Select(kv => kv.Value).ToList();
        var wall = time.GetElapsedTime(started).TotalSeconds;
        var row = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["round"] = Inv(round),
            ["wall_s"] = Inv(wall, "F3"),
            ["collect_s"] = Inv(collectSeconds, "F3"),
            ["slowest_train_s"] = Inv(slowestTrain, "F3"),
            ["overhead_s"] = Inv(wall - slowestTrain, "F3"),
            ["aggregate_s"] = Inv(aggregateSeconds, "F3"),
            ["evaluate_s"] = Inv(evaluateSeconds, "F3"),
            ["selected"] = Inv(selected.Count),
            ["results"] = Inv(accepted),
            ["failures"] = Inv(failures.Count),
            ["rejected"] = Inv(rejected),
            ["late"] = Inv(_lateResults - lateBefore),
            ["ok"] = roundOk ? "true" : "false",
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
            row["virtual_s"] = Inv(virtualClock.AdvanceRound(selected), "F3");
        }

        for (var j = 0; j < (perExperience?.Length ?? 0); j++)
        {
            row[$"accuracy_exp{j}"] = Inv(perExperience![j], "F5");
        }

        if (federated is { } fe)
        {
            row["fed_eval_results"] = Inv(fe.Results);
            row["fed_eval_loss"] = Inv(fe.Loss, "F5");
            row["fed_eval_accuracy"] = Inv(fe.Accuracy, "F5");
            row["fed_eval_s"] = Inv(fe.Seconds, "F3");
        }

        foreach (var (key, value) in aggregationMetrics)
        {
            row.TryAdd("agg_" + key, Inv(value, "G6"));
        }

        // Per-agent spreads, not only means: every agent that sent a result with a local test accuracy this round.
        if (MetricSpread.Of(localAccuracies) is { } spread)
        {
            foreach (var (key, value) in spread.Columns(LocalAccuracyColumn))
            {
                row[key] = Inv(value, key.EndsWith("_n", StringComparison.Ordinal) ? "F0" : "F5");
            }
        }

        foreach (var (key, value) in secureMetrics)
        {
            row.TryAdd(key, value);
        }

        if (epsilon is { } spent)
        {
            row["epsilon"] = Inv(spent, "G8");
            LogPrivacySpent(logger, round, spent, dp?.Options.Delta ?? _options.SecureAggregation.Noise.Delta, dp?.Options.EpsilonBudget ?? double.PositiveInfinity);
        }

        _history[^1] = row;
        row["checkpoint_s"] = Inv(checkpointSeconds, "F3");
        store.CompleteRound(runId, round, row);
        foreach (var agentRow in agentRows)
        {
            MetricsCsv.Append(AgentMetricsPath, agentRow);
        }

        AppendMetrics(row);
        metrics.RoundFinished(new RoundFigures(round, roundOk, accepted, rejected, counts.Sum(c => c.UpWire), counts.Sum(c => c.DownWire), aggregateSeconds, wall, epsilon, control.RunId ?? CoordinatorMetrics.ConfiguredRun));

        // Last: whoever watches the status sees a completed round only once its row and metrics are recorded.
        history.Record(row);
        status.GlobalChecksum = row["global_sha256"];
        status.CompletedRounds = round;
        LogRoundDone(logger, round, wall, accepted, failures.Count, evaluation?.Accuracy ?? double.NaN, slowestTrain);
        return global;
    }

    private sealed record FederatedEvaluation(int Results, double Loss, double Accuracy, double Seconds);

    /// <summary>Asks a sample of agents to evaluate <paramref name="global"/> on their data; null when switched off.</summary>
    private async Task<FederatedEvaluation?> FederatedEvaluateAsync(string runId, int round, float[] global, CancellationToken stoppingToken)
    {
        var settings = _options.FederatedEvaluation;
        if (settings.Fraction <= 0 || round % settings.EveryRounds != 0)
        {
            return null;
        }

        var started = time.GetTimestamp();
        var layout = server.Weights.Layout;
        var available = registry.ConnectedIds().Where(control.Includes).ToArray();
        var asked = Math.Min(available.Length, Math.Max(settings.MinAgents, (int)Math.Ceiling(settings.Fraction * available.Length)));
        new StableRandom(unchecked((ulong)_options.Seed * 1_000_003UL + (ulong)round + 0x5EED_E7A1UL)).Shuffle(available.AsSpan());
        var payload = new Payload { LayoutFingerprint = layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, global);
        var sealedPayload = new SealedPayload($"{runId}-r{round}-eval", payload, _options.ChunkBytes);
        transfers.Publish(sealedPayload);
        var pending = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var agentId in available.Take(asked))
        {
            var task = new EvaluateTask { TaskId = $"{control.TaskPrefix}e{round}-{agentId}", Round = round, Model = sealedPayload.ToRef(), ModelName = server.ModelName, LayoutFingerprint = layout.Fingerprint };
            if (registry.TrySend(agentId, new CoordinatorMessage { Evaluate = task }))
            {
                pending[agentId] = task.TaskId;
            }
        }

        double lossSum = 0, correctSum = 0;
        long examples = 0;
        var results = 0;
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(settings.DeadlineSeconds), time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, deadline.Token))
        {
            while (pending.Count > 0)
            {
                RoundEvent next;
                try
                {
                    next = await events.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                switch (next)
                {
                    case ResultReceived { Result: var result } received when pending.TryGetValue(received.AgentId, out var taskId) && taskId == result.TaskId:
                        pending.Remove(received.AgentId);
                        var n = result.NumExamples;
                        if (result.Ok && n > 0 && result.Metrics.TryGetValue("eval_loss", out var loss) && result.Metrics.TryGetValue("eval_accuracy", out var accuracy)
                            && double.IsFinite(loss) && accuracy is >= 0 and <= 1)
                        {
                            lossSum += loss * n;
                            correctSum += accuracy * n;
                            examples += n;
                            results++;
                        }
                        else
                        {
                            LogClientFailed(logger, round, received.AgentId, $"federated evaluation failed: {(result.Ok ? "missing or invalid metrics" : result.Error)}");
                        }

                        break;
                    case ResultReceived late:
                        DropLate(late);
                        break;
                    case AgentChanged { Connected: false } gone:
                        pending.Remove(gone.AgentId);
                        break;
                    default:
                        break;
                }
            }
        }

        transfers.Retire(sealedPayload.TransferId);
        return new FederatedEvaluation(results, examples > 0 ? lossSum / examples : double.NaN, examples > 0 ? correctSum / examples : double.NaN, time.GetElapsedTime(started).TotalSeconds);
    }

    private bool TryAccept(string agentId, TaskResult result, long length, string fingerprint, IRoundAggregator aggregator, StreamingFolds? streaming, List<ClientFailure> failures)
    {
        try
        {
            var bytes = transfers.TakeCompleted(agentId, result.UploadTransferId);
            var payload = PayloadCodec.Parse(bytes, fingerprint);
            if (streaming is not null && streaming.TryCommit(agentId, result, payload, length))
            {
                return true;
            }

            if (RoundCompression.TryFoldEncoded(aggregator, agentId, result, payload, length))
            {
                return true;
            }

            var delta = RoundCompression.ReadDelta(payload, length);
            aggregator.Add(new ClientUpdate
            {
                ClientId = agentId,
                NumExamples = result.NumExamples,
                LocalSteps = result.LocalSteps,
                Delta = delta,
                Tensors = PayloadCodec.ReadAllDense(payload, PayloadCodec.ModelTensor),
                Metrics = result.Metrics.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            });
            return true;
        }
        catch (Exception e) when (e is TransferException or ArgumentException)
        {
            failures.Add(new ClientFailure(agentId, $"update rejected: {e.Message}"));
            registry.TrySend(agentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = result.TaskId, Reason = e.Message } });
            LogRejected(logger, result.Round, agentId, e.Message);
            return false;
        }
    }

    /// <summary>Posts <see cref="ReconnectGraceEnded"/> for <paramref name="agentId"/> once the grace has passed.</summary>
    private async Task EndGraceLaterAsync(string agentId, int round, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(_options.ReconnectGraceSeconds), time, cancellationToken).ConfigureAwait(false);
            events.Post(new ReconnectGraceEnded(agentId, round));
        }
        catch (OperationCanceledException)
        {
            // The round ended first.
        }
    }

    /// <summary>
    /// Tells the activator the round needs nothing more from <paramref name="agentId"/>; with an activator that retires
    /// released agents, remembers the session it is leaving, so that the next round that samples it does not send its
    /// task there.
    /// </summary>
    private void ReleaseAgent(string agentId)
    {
        if (activator.RetiresReleasedAgents && registry.Find(agentId)?.Connection is { } connection)
        {
            _retiring[agentId] = connection.Number;
        }

        activator.Release(agentId);
    }

    private void DropLate(ResultReceived late)
    {
        _lateResults++;
        transfers.Discard(late.AgentId, late.Result.UploadTransferId);

        registry.TrySend(late.AgentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = late.Result.TaskId, Reason = "late: the round already closed" } });
        LogLate(logger, late.Result.Round, late.AgentId);
    }

    /// <summary>The result metric the agents report their local test accuracy in.</summary>
    internal const string LocalAccuracyMetric = "local_test_accuracy";

    /// <summary>The prefix of the rounds.csv columns of its spread over the agents (<c>local_acc_mean</c>, …).</summary>
    internal const string LocalAccuracyColumn = "local_acc";

    /// <summary>The per-agent CSV, beside the per-round one: a row per agent and round with a local test accuracy.</summary>
    private string AgentMetricsPath => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(MetricsPath))!, "agents.csv");

    /// <summary>The agents.csv row of <paramref name="result"/>, or null when it carries no finite local test accuracy.</summary>
    private static Dictionary<string, string>? AgentRow(int round, string agentId, TaskResult result)
    {
        if (!result.Metrics.TryGetValue(LocalAccuracyMetric, out var accuracy) || !double.IsFinite(accuracy))
        {
            return null;
        }

        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["round"] = Inv(round),
            ["agent"] = agentId,
            [LocalAccuracyMetric] = Inv(accuracy, "F5"),
            ["local_test_loss"] = Inv(result.Metrics.GetValueOrDefault("local_test_loss", double.NaN), "F5"),
            ["local_test_examples"] = Inv(result.Metrics.GetValueOrDefault("local_test_examples", double.NaN), "F0"),
            ["train_loss"] = Inv(result.Metrics.GetValueOrDefault("train_loss", double.NaN), "F5"),
            ["examples"] = Inv(result.NumExamples, "F0"),
        };
    }

    private string MetricsPath => Path.IsPathRooted(_options.MetricsFile) ? _options.MetricsFile : Path.Combine(_options.StateDirectory, _options.MetricsFile);

    private void AppendMetrics(Dictionary<string, string> row) => MetricsCsv.Append(MetricsPath, row);

    /// <summary>ε spent so far (0 before the first released round).</summary>
    private static double SpentEpsilon(DifferentialPrivacyStrategy dp) => dp.Ledger.Steps == 0 ? 0 : dp.Spent.Epsilon;

    /// <summary>ε spent so far by the distributed noise of secure aggregation; null when it is off.</summary>
    private double? SecureEpsilon() => _secureLedger is null ? null : _secureLedger.Steps == 0 ? 0 : _secureLedger.Spent(_options.SecureAggregation.Noise.Delta).Epsilon;

    /// <summary>The ledger of distributed noise under secure aggregation (restored from <paramref name="ledgerJson"/>); null when that noise is off.</summary>
    private PrivacyLedger? SecureNoiseLedger(string? ledgerJson)
    {
        if (_options.SecureAggregation is not { Enabled: true, Noise.Enabled: true })
        {
            return null;
        }

        try
        {
            return ledgerJson is null ? new PrivacyLedger() : PrivacyLedger.FromJson(ledgerJson);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"The checkpoint's privacy ledger is unreadable: {e.Message}", e);
        }
    }

    /// <summary>
    /// Refuses, before the first round, distributed noise that the ring cannot hold for the largest sum a round may have:
    /// 2B − 1 agents with buckets of B, otherwise the round size the configuration asks for at least. With
    /// <c>Noise:TargetEpsilon</c> it first calibrates <c>Noise:Multiplier</c> for the run's rounds at that size.
    /// </summary>
    private SkellamEncoding CheckNoiseFitsTheRing(int length)
    {
        var settings = _options.SecureAggregation;
        var agents = settings.BucketSize > 0 ? (2 * settings.BucketSize) - 1 : Math.Max(2, Math.Max(_options.MinAvailable, _options.MinFit));
        try
        {
            if (settings.Noise.TargetEpsilon > 0 && settings.Noise.Multiplier == 0)
            {
                // Calibrated once, for the largest sum a round may have; the rounds' actual ε is what the ledger reports.
                var options = settings.ToOptions(agents);
                var minSurvivors = options.ResolveMinSurvivors(agents, options.ResolveDegree(agents));
                settings.Noise.Multiplier = SkellamEncoding.CalibrateNoise(settings.Noise.TargetEpsilon, settings.Noise.Delta, _options.Rounds, settings.RingBits, length, agents, minSurvivors, settings.Noise.L2Clip);
            }

            return settings.ToOptions(agents).NoiseEncoding(agents, length)!;
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"Coordinator:SecureAggregation:Noise cannot run with {agents} agents per sum and {length} parameters: {e.Message}", e);
        }
    }

    /// <summary>Hex of the first 8 bytes of the SHA-256 over the vector's bytes.</summary>
    public static string Checksum(ReadOnlySpan<float> vector) =>
        Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(vector)).AsSpan(0, 8));

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Run {RunId}: model {Model} ({Floats} floats), strategy {Strategy}; {Compute}")]
    private static partial void LogStarted(ILogger logger, string runId, string model, long floats, string strategy, string compute);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Run {RunId} resumed after round {Round} (global {Checksum})")]
    private static partial void LogResumed(ILogger logger, string runId, int round, string checksum);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Waiting for agents: {Connected} of {Needed} connected")]
    private static partial void LogWaiting(ILogger logger, int connected, int needed);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Round {Round}: {Selected} of {Available} agents asked, target {Target} results, model payload {Bytes} bytes")]
    private static partial void LogRoundStarted(ILogger logger, int round, int selected, int available, int target, int bytes);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Information, Message = "Round {Round} done in {Seconds:F2} s: {Results} results, {Failures} failures, test accuracy {Accuracy:P2}, slowest training {Train:F2} s")]
    private static partial void LogRoundDone(ILogger logger, int round, double seconds, int results, int failures, double accuracy, double train);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Round {Round} reached its deadline with {Results} results; {Pending} agents still pending")]
    private static partial void LogDeadline(ILogger logger, int round, int results, int pending);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Warning, Message = "Round {Round}: agent {AgentId} failed: {Reason}")]
    private static partial void LogClientFailed(ILogger logger, int round, string agentId, string reason);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Warning, Message = "Round {Round}: update of agent {AgentId} rejected: {Reason}")]
    private static partial void LogRejected(ILogger logger, int round, string agentId, string reason);

    [LoggerMessage(EventId = 1121, Level = LogLevel.Debug, Message = "Round {Round}: update of agent {AgentId} accepted ({Examples} examples)")]
    private static partial void LogAccepted(ILogger logger, int round, string agentId, long examples);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Information, Message = "Late result of round {Round} from agent {AgentId} dropped")]
    private static partial void LogLate(ILogger logger, int round, string agentId);

    [LoggerMessage(EventId = 1109, Level = LogLevel.Error, Message = "Round {Round} failed: {Results} results, fewer than the minimum {MinFit}; the global model is unchanged")]
    private static partial void LogRoundFailed(ILogger logger, int round, int results, int minFit);

    [LoggerMessage(EventId = 1110, Level = LogLevel.Information, Message = "Run {RunId} finished after {Rounds} rounds (global {Checksum})")]
    private static partial void LogFinished(ILogger logger, string runId, int rounds, string checksum);

    [LoggerMessage(EventId = 1112, Level = LogLevel.Information, Message = "Round 0 (initial model): test accuracy {Accuracy:P2}, loss {Loss:F4}")]
    private static partial void LogInitialEvaluation(ILogger logger, double accuracy, double loss);

    [LoggerMessage(EventId = 1113, Level = LogLevel.Information, Message = "Roster {Path}: {Count} agent ids, {Added} new")]
    private static partial void LogRoster(ILogger logger, string path, int count, int added);

    [LoggerMessage(EventId = 1114, Level = LogLevel.Information, Message = "Differential privacy: Poisson rate q = {SampleRate}, noise multiplier z = {NoiseMultiplier:G6} (on the update sum z_Δ = {UpdateNoiseMultiplier:G6}), clip bound {ClipBound:G6} ({Clipping}, clipped on the {ClippedOn}), δ = {Delta:G3}, ε budget {Budget:G6}; noise and sample keyed from {Key}; {Steps} rounds charged so far, ε = {Epsilon:G6}")]
    private static partial void LogPrivacy(ILogger logger, double sampleRate, double noiseMultiplier, double updateNoiseMultiplier, double clipBound, string clipping, string clippedOn, double delta, double budget, string key, long steps, double epsilon);

    [LoggerMessage(EventId = 1115, Level = LogLevel.Information, Message = "Round {Round}: privacy spent ε = {Epsilon:G6} at δ = {Delta:G3} (budget {Budget:G6})")]
    private static partial void LogPrivacySpent(ILogger logger, int round, double epsilon, double delta, double budget);

    [LoggerMessage(EventId = 1140, Level = LogLevel.Information, Message = "Distributed Skellam noise under secure aggregation: z = {NoiseMultiplier}, L2 clip {L2Clip}, δ = {Delta}; γ = {Scale:G6} for sums of {MinSurvivors} to {MaxAgents} agents; {Steps} releases so far, ε = {Epsilon:G6} (no amplification by sampling)")]
    private static partial void LogDistributedNoise(ILogger logger, double noiseMultiplier, double l2Clip, double delta, double scale, int minSurvivors, int maxAgents, long steps, double epsilon);

    [LoggerMessage(EventId = 1116, Level = LogLevel.Warning, Message = "Privacy budget reached: round {Round} would take ε from {Epsilon:G6} to {Next:G6}, above the budget {Budget:G6} at δ = {Delta:G3}; the run stops here")]
    private static partial void LogBudgetReached(ILogger logger, int round, double epsilon, double next, double budget, double delta);

    [LoggerMessage(EventId = 1117, Level = LogLevel.Warning, Message = "Round {Round} had no usable result from its {Selected} sampled agents: the noise alone was released and the round is charged")]
    private static partial void LogNoiseOnlyRelease(ILogger logger, int round, int selected);

    [LoggerMessage(EventId = 1118, Level = LogLevel.Warning, Message = "Round {Round}: update of agent {AgentId} left out by the aggregation: {Reason}")]
    private static partial void LogRejectedAtAggregation(ILogger logger, int round, string agentId, string reason);

    [LoggerMessage(EventId = 1119, Level = LogLevel.Error, Message = "Round {Round} failed: its {Results} results could not be aggregated ({Reason}); the global model is unchanged")]
    private static partial void LogAggregationFailed(ILogger logger, int round, int results, string reason);

    [LoggerMessage(EventId = 1120, Level = LogLevel.Information, Message = "Round {Round}: {Committed} updates decoded while their uploads streamed in, {Aborted} streams fell back to decoding the completed upload")]
    private static partial void LogStreamingFolds(ILogger logger, int round, int committed, int aborted);

    [LoggerMessage(EventId = 1250, Level = LogLevel.Warning, Message = "{Path} reconciled with the store on resume: {Restored} rows restored from it, {Dropped} rows of rounds it never completed dropped")]
    private static partial void LogMetricsReconciled(ILogger logger, string path, int restored, int dropped);

    [LoggerMessage(EventId = 1111, Level = LogLevel.Critical, Message = "The run stopped: {Reason}")]
    private static partial void LogRunFailed(ILogger logger, string reason, Exception exception);
}
