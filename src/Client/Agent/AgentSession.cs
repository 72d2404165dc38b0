using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Federated.Client.State;
using Federated.Client.Transfers;
using Federated.Client.Training;
using Federated.Learning.Weights;
using Federated.Protocol;
using Federated.Protocol.Identity;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;

namespace Federated.Client.Agent;

/// <summary>How a session ended.</summary>
internal enum SessionEnd
{
    /// <summary>The coordinator closed the stream: reconnect.</summary>
    Disconnected,

    /// <summary>The coordinator sent <c>Shutdown</c>: stop the agent.</summary>
    Shutdown,
}

/// <summary>
/// One <c>Session</c> stream: sends <c>Hello</c>, heartbeats on a timer and task results, all through one write lock;
/// reads coordinator messages and runs train and evaluate tasks one at a time on a background task so that
/// heartbeats keep flowing while TorchSharp trains. Any transport failure ends the session with that exception.
/// </summary>
internal sealed class AgentSession : IDisposable
{
    private readonly Protocol.V1.Coordinator.CoordinatorClient _client;
    private readonly AgentRuntime _runtime;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Metadata _headers;
    private readonly TimeSpan _heartbeat;
    private readonly int _chunkBytes;
    private readonly TransferClient _transfers;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Challenge? _sessionChallenge;
    private IClientStreamWriter<AgentMessage>? _requests;
    private volatile string? _currentTaskId;
    private SecureRoundAgent? _secure;

    public AgentSession(Protocol.V1.Coordinator.CoordinatorClient client, EnrollReply enrollment, AgentRuntime runtime, TimeProvider time, ILogger logger)
    {
        _client = client;
        _runtime = runtime;
        _time = time;
        _logger = logger;
        _headers = new Metadata { { "authorization", $"Bearer {enrollment.SessionToken}" } };
        _sessionChallenge = enrollment.SessionChallenge;
        _heartbeat = TimeSpan.FromSeconds(enrollment.HeartbeatSeconds > 0 && double.IsFinite(enrollment.HeartbeatSeconds) ? Math.Clamp(enrollment.HeartbeatSeconds, 0.05, 3600) : 5);
        _chunkBytes = enrollment.ChunkBytes >= 1024 ? enrollment.ChunkBytes : PayloadCodec.DefaultChunkBytes;
        _transfers = new TransferClient(client, _headers, runtime.Options.MaxTransferRetries, time, logger);
    }

    /// <summary>Runs the session until the coordinator closes it, asks to shut down, or the transport fails (thrown).</summary>
    public async Task<SessionEnd> RunAsync(CancellationToken stoppingToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var token = cts.Token;
        using var call = _client.Session(_headers, cancellationToken: token);
        _requests = call.RequestStream;
        await SendAsync(new AgentMessage { Hello = SignedHello() }, token);

        var tasks = Channel.CreateUnbounded<CoordinatorMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var reader = ReadLoopAsync(call.ResponseStream, tasks.Writer, token);
        var heartbeat = HeartbeatLoopAsync(token);
        var worker = ProcessTasksAsync(tasks.Reader, token);
        var first = await Task.WhenAny(reader, heartbeat, worker);
        if (first == reader && reader.IsCompletedSuccessfully)
        {
            await TryCompleteRequestsAsync();
        }

        await cts.CancelAsync();
        tasks.Writer.TryComplete();
        try
        {
            await Task.WhenAll(reader, heartbeat, worker);
        }
        catch (Exception) when (first.IsFaulted || token.IsCancellationRequested)
        {
            // The loops that did not fail first only report the cancellation that followed.
        }

        if (first.IsFaulted)
        {
            ExceptionDispatchInfo.Throw(first.Exception!.InnerException ?? first.Exception);
        }

        stoppingToken.ThrowIfCancellationRequested();
        return first == reader && reader.IsCompletedSuccessfully ? reader.Result : SessionEnd.Disconnected;
    }

    public void Dispose()
    {
        _secure?.Dispose();
        _writeLock.Dispose();
    }

    /// <summary>The Hello, signed over the session challenge when the coordinator issued one (an agent enrolled by key).</summary>
    private Hello SignedHello()
    {
        var hello = new Hello { AgentId = _runtime.AgentId, ProtocolVersion = ProtocolVersion.Current, Capabilities = _runtime.Capabilities };
        if (_sessionChallenge is { } challenge)
        {
            var payload = ChallengeSigning.Payload(ChallengeSigning.SessionPurpose, challenge.CoordinatorId, _runtime.AgentId, challenge.Nonce.Span, challenge.ExpiresUnixMs, _runtime.Identity.PublicKey);
            hello.ChallengeNonce = challenge.Nonce;
            hello.Signature = Google.Protobuf.ByteString.CopyFrom(_runtime.Identity.Sign(payload));
        }

        return hello;
    }

    private async Task SendAsync(AgentMessage message, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            await _requests!.WriteAsync(message, cancellationToken);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task TryCompleteRequestsAsync()
    {
        if (!await _writeLock.WaitAsync(TimeSpan.FromSeconds(1)))
        {
            return;
        }

        try
        {
            await _requests!.CompleteAsync();
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException or IOException)
        {
            // Best effort: the stream may already be gone.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_heartbeat, _time);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            await SendAsync(new AgentMessage { Heartbeat = new Heartbeat { TaskId = _currentTaskId ?? string.Empty } }, cancellationToken);
        }
    }

    private async Task<SessionEnd> ReadLoopAsync(IAsyncStreamReader<CoordinatorMessage> responses, ChannelWriter<CoordinatorMessage> tasks, CancellationToken cancellationToken)
    {
        await foreach (var message in responses.ReadAllAsync(cancellationToken))
        {
            switch (message.KindCase)
            {
                case CoordinatorMessage.KindOneofCase.Welcome:
                    AgentLog.Welcome(_logger, message.Welcome.RunId, message.Welcome.CurrentRound);
                    break;
                case CoordinatorMessage.KindOneofCase.Train or CoordinatorMessage.KindOneofCase.Evaluate or CoordinatorMessage.KindOneofCase.Secagg:
                    await tasks.WriteAsync(message, cancellationToken);
                    break;
                case CoordinatorMessage.KindOneofCase.Wait:
                    AgentLog.Wait(_logger, message.Wait.Seconds, message.Wait.Reason);
                    break;
                case CoordinatorMessage.KindOneofCase.Reconfigure:
                    ApplyReconfigure(message.Reconfigure);
                    break;
                case CoordinatorMessage.KindOneofCase.Shutdown:
                    AgentLog.Shutdown(_logger, message.Shutdown.Reason);
                    return SessionEnd.Shutdown;
                case CoordinatorMessage.KindOneofCase.Rejected:
                    AgentLog.ResultRejected(_logger, message.Rejected.TaskId, message.Rejected.Reason);
                    break;
                case CoordinatorMessage.KindOneofCase.HeartbeatAck:
                    break; // the agent does not ask for acknowledgements; one that arrives anyway needs nothing
                default:
                    AgentLog.UnknownMessage(_logger, message.KindCase);
                    break;
            }
        }

        AgentLog.SessionClosed(_logger);
        return SessionEnd.Disconnected;
    }

    private void ApplyReconfigure(Reconfigure reconfigure)
    {
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var settings = string.Join(", ", reconfigure.Settings.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}={s.Value}"));
            AgentLog.Reconfigure(_logger, settings);
        }

        if (reconfigure.Settings.TryGetValue("threads", out var text))
        {
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var threads) && threads is > 0 and <= 1024)
            {
                LocalTrainingService.SetThreads(threads);
            }
            else
            {
                AgentLog.ReconfigureIgnored(_logger, text);
            }
        }
    }

    /// <summary>The task config key a coordinator sets on a task it sends again after a reconnect.</summary>
    private const string ResentConfigKey = "resent";

    private async Task ProcessTasksAsync(ChannelReader<CoordinatorMessage> tasks, CancellationToken cancellationToken)
    {
        // Uploads an earlier session (or process) sealed but did not deliver go first: they are older than any new task.
        foreach (var pending in _runtime.Pending.ToList())
        {
            AgentLog.PendingResuming(_logger, pending.Payload.TransferId, pending.Manifest.TaskId, pending.Manifest.Round);
            await DeliverAsync(pending, resume: true, cancellationToken);
        }

        _runtime.Status.Phase("idle");
        await foreach (var message in tasks.ReadAllAsync(cancellationToken))
        {
            if (message.KindCase == CoordinatorMessage.KindOneofCase.Train && message.Train.Config.GetValueOrDefault(ResentConfigKey) == "true"
                && _runtime.State.LastResult is { Delivered: true, Kind: "train" } last && last.TaskId == message.Train.TaskId)
            {
                // A coordinator re-sends the task of an agent whose session dropped mid-round; this agent had already
                // sealed that task's update and delivered it first thing on the new session. (Only a re-send: a
                // coordinator restarted mid-round issues the round's tasks afresh, with the same ids, and wants them.)
                AgentLog.TaskAlreadyDelivered(_logger, message.Train.TaskId, message.Train.Round);
                continue;
            }

            if (message.KindCase == CoordinatorMessage.KindOneofCase.Train && SimulatedDropout(message.Train.Round))
            {
                AgentLog.SimulatedDropout(_logger, message.Train.TaskId, message.Train.Round);
                continue;
            }

            if (message.KindCase == CoordinatorMessage.KindOneofCase.Secagg)
            {
                await SecureStageAsync(message.Secagg, cancellationToken);
            }
            else if (message.KindCase == CoordinatorMessage.KindOneofCase.Train && message.Train.Secagg is not null)
            {
                if (await TrainSecureAsync(message.Train, cancellationToken) is { } failure)
                {
                    Remember(failure, "train", delivered: true);
                    await SendAsync(new AgentMessage { Result = failure }, cancellationToken);
                }
            }
            else if (message.KindCase == CoordinatorMessage.KindOneofCase.Train)
            {
                // Null when the update was delivered with its result; a failure result otherwise.
                if (await TrainAsync(message.Train, cancellationToken) is { } failure)
                {
                    Remember(failure, "train", delivered: true);
                    await SendAsync(new AgentMessage { Result = failure }, cancellationToken);
                }
            }
            else
            {
                var result = await EvaluateAsync(message.Evaluate, cancellationToken);
                Remember(result, "evaluate", delivered: true);
                await SendAsync(new AgentMessage { Result = result }, cancellationToken);
            }

            _runtime.Status.Phase("idle");
        }
    }

    /// <summary>
    /// Uploads a sealed update (resuming where the coordinator's copy ends when <paramref name="resume"/>) and sends its
    /// result, then forgets it. A transport failure propagates and ends the session: the update stays pending and goes
    /// first in the next session. An update the coordinator refuses outright is dropped with a failure result.
    /// </summary>
    private async Task<TaskResult?> DeliverAsync(PendingUpload pending, bool resume, CancellationToken cancellationToken)
    {
        var manifest = pending.Manifest;
        _currentTaskId = manifest.TaskId;
        _runtime.Status.Phase("uploading", manifest.TaskId, manifest.Round);
        try
        {
            var started = _time.GetTimestamp();
            try
            {
                await _transfers.UploadAsync(pending.Payload, pending.Header, cancellationToken, resume);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.OutOfRange)
            {
                AgentLog.PendingDropped(_logger, pending.Payload.TransferId, $"{e.StatusCode}: {e.Status.Detail}");
                Forget(pending);
                return Failure(manifest.TaskId, manifest.Round, e);
            }

            var result = pending.Result;
            result.Metrics["upload_seconds"] = _time.GetElapsedTime(started).TotalSeconds;
            await SendAsync(new AgentMessage { Result = result }, cancellationToken);
            Forget(pending);
            Remember(result, "train", delivered: true);
            AgentLog.PendingDelivered(_logger, pending.Payload.TransferId, manifest.Round);
            return null;
        }
        finally
        {
            _currentTaskId = null;
        }
    }

    private void Forget(PendingUpload pending)
    {
        _runtime.Pending.Remove(pending);
        try
        {
            _runtime.Store.DeletePending(pending.Payload.TransferId);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.PersistFailed(_logger, _runtime.Store.Directory, e.Message);
        }

        _runtime.Status.Update(s => s with { PendingUploads = _runtime.Pending.Count });
    }

    /// <summary>Records <paramref name="result"/> as the last result (status and, for delivered training results, <c>state.json</c>).</summary>
    private void Remember(TaskResult result, string kind, bool delivered)
    {
        var summary = new TaskSummary
        {
            TaskId = result.TaskId,
            Round = result.Round,
            Kind = kind,
            Ok = result.Ok,
            Error = result.Ok ? null : result.Error,
            Examples = result.NumExamples,
            Loss = result.Metrics.TryGetValue(kind == "train" ? "train_loss" : "eval_loss", out var loss) ? loss : null,
            Accuracy = result.Metrics.TryGetValue(kind == "train" ? "train_accuracy" : "eval_accuracy", out var accuracy) && double.IsFinite(accuracy) ? accuracy : null,
            Delivered = delivered,
            At = _time.GetUtcNow(),
        };
        _runtime.Status.Update(s => s with { LastResult = summary, LastRound = _runtime.State.LastRound });
        if (kind == "train" && result.Ok)
        {
            _runtime.State = _runtime.State with { LastResult = summary };
            try
            {
                _runtime.Store.Save(_runtime.State);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                AgentLog.PersistFailed(_logger, _runtime.Store.Directory, e.Message);
            }
        }
    }

    /// <summary>
    /// Downloads, trains and seals the task's update, commits it as a pending upload together with the agent's state
    /// (so that a crash from here on loses nothing), then delivers it. Returns a failure result when the task failed
    /// before its update was sealed, null once the update and its result are delivered.
    /// </summary>
    private async Task<TaskResult?> TrainAsync(TrainTask task, CancellationToken cancellationToken)
    {
        _currentTaskId = task.TaskId;
        var training = task.Training ?? new TrainingConfig();
        AgentLog.TrainStarted(_logger, task.TaskId, task.Round, task.ModelName, training.Epochs, training.BatchSize, training.Optimizer, training.LearningRate);
        var honest = !_runtime.Attack.IsAttacker;
        if (honest)
        {
            _runtime.Colluding.Expect(task.Round, _runtime.AgentId);
        }

        PendingUpload pending;
        try
        {
            _runtime.Status.Phase("downloading", task.TaskId, task.Round);
            var started = _time.GetTimestamp();
            var bytes = await _transfers.DownloadAsync(task.Model, cancellationToken);
            var downloadSeconds = _time.GetElapsedTime(started).TotalSeconds;

            var transferId = $"{_runtime.AgentId}-{task.TaskId}";
            var service = _runtime.Training;
            _runtime.Status.Phase("training", task.TaskId, task.Round);
            var local = await _runtime.Torch.RunAsync(() => service.TrainLocal(task, bytes, cancellationToken), cancellationToken);
            var sent = await AttackStageAsync(local, cancellationToken);
            var extraMetrics = new Dictionary<string, double>(StringComparer.Ordinal);
            if (_runtime.Middleware.Count > 0)
            {
                var context = new Middleware.UpdateContext(task, sent, service.TrainingExamples, extraMetrics);
                await _runtime.Torch.RunAsync(() =>
                {
                    foreach (var middleware in _runtime.Middleware)
                    {
                        middleware.OnUpdate(context);
                    }
                }, cancellationToken);
                sent = context.Delta;
            }

            var outcome = await _runtime.Torch.RunAsync(() => service.Seal(local, sent, transferId, _chunkBytes), cancellationToken);
            var update = outcome.Update;

            var slowdown = _runtime.Options.Simulation.Slowdown;
            if (slowdown > 1)
            {
                // A simulated straggler: the device is this many times slower than the machine it runs on.
                var extra = TimeSpan.FromSeconds(local.Report.Epochs.Sum(e => e.Seconds) * (slowdown - 1));
                await Task.Delay(extra, _time, cancellationToken);
            }

            var report = local.Report;
            var trainSeconds = report.Epochs.Sum(e => e.Seconds) * Math.Max(1, _runtime.Options.Simulation.Slowdown);
            var accuracy = report.Epochs.Count > 0 ? report.Epochs[^1].Accuracy : double.NaN;
            var examples = service.TrainingExamples;
            AgentLog.TrainDone(_logger, task.TaskId, task.Round, examples, trainSeconds, report.Steps, report.FinalLoss, accuracy);
            var result = new TaskResult
            {
                TaskId = task.TaskId,
                Round = task.Round,
                Ok = true,
                UploadTransferId = transferId,
                NumExamples = examples,
                LocalSteps = report.Steps,
                Metrics =
                {
                    ["train_loss"] = report.FinalLoss,
                    ["train_accuracy"] = accuracy,
                    ["train_seconds"] = trainSeconds,
                    ["download_seconds"] = downloadSeconds,
                    ["examples"] = report.Samples,
                },
            };
            foreach (var (key, value) in outcome.Metrics)
            {
                result.Metrics[key] = value;
            }

            foreach (var (key, value) in extraMetrics)
            {
                result.Metrics[key] = value;
            }

            var header = update.ToUploadHeader(task.TaskId, task.Round, service.TrainingExamples);
            pending = new PendingUpload(
                new PendingUploadManifest { TransferId = transferId, TaskId = task.TaskId, Round = task.Round, ChunkBytes = update.ChunkBytes, Bytes = update.Bytes.LongLength, CreatedAt = _time.GetUtcNow() },
                update,
                header,
                result);
            _runtime.State = _runtime.State with { LastRound = task.Round, LastTaskId = task.TaskId };
            await CommitAsync(pending, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            AgentLog.TaskFailed(_logger, task.TaskId, task.Round, e.Message, e);
            return Failure(task.TaskId, task.Round, e);
        }
        finally
        {
            if (honest)
            {
                _runtime.Colluding.Withdraw(task.Round, _runtime.AgentId); // no-op once published
            }

            _currentTaskId = null;
        }

        return await DeliverAsync(pending, resume: false, cancellationToken);
    }

    /// <summary>
    /// A train task of a secure round: downloads and trains like any other, then keeps the delta in memory and answers
    /// with its signed key advertisement; the masked delta leaves later, in <see cref="SecureStageAsync"/>. Nothing is
    /// kept as a pending upload: an agent that loses its session mid-round is a dropout of that round.
    /// </summary>
    private async Task<TaskResult?> TrainSecureAsync(TrainTask task, CancellationToken cancellationToken)
    {
        _secure?.Dispose();
        _secure = null;
        _currentTaskId = task.TaskId;
        var training = task.Training ?? new TrainingConfig();
        AgentLog.TrainStarted(_logger, task.TaskId, task.Round, task.ModelName, training.Epochs, training.BatchSize, training.Optimizer, training.LearningRate);
        try
        {
            _runtime.Status.Phase("downloading", task.TaskId, task.Round);
            var started = _time.GetTimestamp();
            var bytes = await _transfers.DownloadAsync(task.Model, cancellationToken);
            var downloadSeconds = _time.GetElapsedTime(started).TotalSeconds;
            var service = _runtime.Training;
            _runtime.Status.Phase("training", task.TaskId, task.Round);
            var local = await _runtime.Torch.RunAsync(() => service.TrainLocal(task, bytes, cancellationToken), cancellationToken);
            var sent = await AttackStageAsync(local, cancellationToken);
            var report = local.Report;
            var accuracy = report.Epochs.Count > 0 ? report.Epochs[^1].Accuracy : double.NaN;
            var trainSeconds = report.Epochs.Sum(e => e.Seconds);
            var examples = service.TrainingExamples;
            AgentLog.TrainDone(_logger, task.TaskId, task.Round, examples, trainSeconds, report.Steps, report.FinalLoss, accuracy);
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["train_loss"] = report.FinalLoss,
                ["train_accuracy"] = accuracy,
                ["train_seconds"] = trainSeconds,
                ["download_seconds"] = downloadSeconds,
                ["examples"] = report.Samples,
            };
            foreach (var (key, value) in local.Metrics)
            {
                metrics[key] = value;
            }

            var state = _runtime.State with { LastRound = task.Round, LastTaskId = task.TaskId };
            _runtime.State = await _runtime.Torch.RunAsync(() => service.Persist(state), cancellationToken);
            _secure = new SecureRoundAgent(task, _runtime.Identity, sent, examples, metrics, report.Steps, SecAggFault(task.Round) == "bad-signature");
            if (SecAggFault(task.Round) == "keys")
            {
                AgentLog.SecAggSilent(_logger, task.TaskId, task.Round, "advertise keys");
                return null;
            }

            await SendAsync(new AgentMessage { Secagg = _secure.AdvertiseKeys() }, cancellationToken);
            AgentLog.SecAggStage(_logger, task.TaskId, task.Round, "advertise keys");
            return null;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            AgentLog.TaskFailed(_logger, task.TaskId, task.Round, e.Message, e);
            return Failure(task.TaskId, task.Round, e);
        }
        finally
        {
            _currentTaskId = null;
        }
    }

    /// <summary>
    /// One later stage of the secure round in progress: share keys, masked input (uploaded through the chunked upload)
    /// or unmasking. A stage this agent refuses (too few verified neighbours, an unmasking request that would reveal
    /// both secrets of an agent) is answered with a failure result; a stage of another round is ignored.
    /// </summary>
    private async Task SecureStageAsync(SecAggStage stage, CancellationToken cancellationToken)
    {
        var secure = _secure;
        if (secure is null || secure.Task.TaskId != stage.TaskId || secure.Task.Round != stage.Round)
        {
            AgentLog.SecAggStale(_logger, stage.TaskId, stage.Round);
            return;
        }

        var name = stage.StageCase switch
        {
            SecAggStage.StageOneofCase.ShareKeys => "shares",
            SecAggStage.StageOneofCase.MaskInput => "input",
            SecAggStage.StageOneofCase.Unmask => "unmask",
            _ => "unknown",
        };
        if (SecAggFault(stage.Round) is var fault && (fault == name || Later(fault, name)))
        {
            AgentLog.SecAggSilent(_logger, stage.TaskId, stage.Round, name);
            return;
        }

        _currentTaskId = stage.TaskId;
        try
        {
            SecAggReply reply;
            switch (stage.StageCase)
            {
                case SecAggStage.StageOneofCase.ShareKeys:
                    reply = secure.ShareKeys(stage.ShareKeys);
                    break;
                case SecAggStage.StageOneofCase.MaskInput:
                    _runtime.Status.Phase("uploading", stage.TaskId, stage.Round);
                    var transferId = $"{_runtime.AgentId}-{stage.TaskId}-secagg";
                    var (payload, answer) = await _runtime.Torch.RunAsync(() => secure.MaskInput(stage.MaskInput, transferId, secure.Task.LayoutFingerprint), cancellationToken);
                    var sealedPayload = new SealedPayload(transferId, payload, _chunkBytes);
                    var started = _time.GetTimestamp();
                    await _transfers.UploadAsync(sealedPayload, sealedPayload.ToUploadHeader(stage.TaskId, stage.Round), cancellationToken);
                    answer.MaskedInput.Metrics["upload_seconds"] = _time.GetElapsedTime(started).TotalSeconds;
                    reply = answer;
                    break;
                case SecAggStage.StageOneofCase.Unmask:
                    reply = secure.Unmask(stage.Unmask);
                    break;
                default:
                    AgentLog.UnknownMessage(_logger, CoordinatorMessage.KindOneofCase.Secagg);
                    return;
            }

            await SendAsync(new AgentMessage { Secagg = reply }, cancellationToken);
            AgentLog.SecAggStage(_logger, stage.TaskId, stage.Round, name);
            if (stage.StageCase == SecAggStage.StageOneofCase.Unmask)
            {
                _secure = null;
                secure.Dispose();
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not RpcException { StatusCode: StatusCode.Unavailable or StatusCode.Cancelled })
        {
            AgentLog.TaskFailed(_logger, stage.TaskId, stage.Round, e.Message, e);
            await SendAsync(new AgentMessage { Result = Failure(stage.TaskId, stage.Round, e) }, cancellationToken);
        }
        finally
        {
            _currentTaskId = null;
            _runtime.Status.Phase("idle");
        }
    }

    /// <summary>The secure-aggregation fault simulated in <paramref name="round"/> (<c>none</c> outside simulations).</summary>
    private string SecAggFault(int round)
    {
        var simulation = _runtime.Options.Simulation;
        return simulation.SecAggFaultRound == 0 || simulation.SecAggFaultRound == round ? simulation.SecAggFault : "none";
    }

    /// <summary>True when stage <paramref name="stage"/> comes after <paramref name="fault"/>, the stage the agent went silent at.</summary>
    private static bool Later(string fault, string stage)
    {
        string[] order = ["keys", "shares", "input", "unmask"];
        var (f, s) = (Array.IndexOf(order, fault), Array.IndexOf(order, stage));
        return f >= 0 && s > f;
    }

    /// <summary>
    /// Keeps the sealed update until it is delivered: on disk first (pending folder, then the model, strategy state,
    /// residual and <c>state.json</c>), so that the agent's disk is never behind the update it uploads, then in memory.
    /// Pending uploads of earlier runs that would push the total over the memory budget are dropped, oldest first.
    /// </summary>
    private async Task CommitAsync(PendingUpload pending, CancellationToken cancellationToken)
    {
        var service = _runtime.Training;
        if (_runtime.Options.Resources.MemoryBudgetBytes is { } budget)
        {
            // The caches (replay buffer, EWC terms, teacher, residual, downlink model) count against the budget too.
            var caches = await _runtime.Torch.RunAsync(() => service.CacheBytes(), cancellationToken);
            var older = _runtime.Pending.ToList();
            var drop = MemoryBudget.PendingToDrop(budget, caches, pending.Payload.Bytes.LongLength, older.Select(p => p.Payload.Bytes.LongLength).ToList());
            foreach (var old in older.Take(drop))
            {
                AgentLog.PendingDropped(_logger, old.Payload.TransferId, $"the pending uploads and the caches ({caches} bytes) would exceed Client:Resources:MemoryBudgetMB ({_runtime.Options.Resources.MemoryBudgetMB} MiB)");
                Forget(old);
            }
        }

        var state = _runtime.State;
        try
        {
            _runtime.State = await _runtime.Torch.RunAsync(
                () =>
                {
                    service.SavePending(pending.Payload, pending.Header, pending.Result);
                    return service.Persist(state);
                },
                cancellationToken);
            AgentLog.PendingSaved(_logger, pending.Manifest.TaskId, pending.Payload.TransferId, pending.Manifest.Round, pending.Manifest.Bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.PersistFailed(_logger, _runtime.Store.Directory, e.Message);
        }

        _runtime.Pending.Add(pending);
        _runtime.Status.Update(s => s with { PendingUploads = _runtime.Pending.Count, LastRound = state.LastRound });
    }

    /// <summary>
    /// The delta to upload. An honest agent's own, which it also publishes to the colluding channel (a no-op outside
    /// the in-process simulator); an attacker's, what <see cref="Attacks.AttackStage.Apply"/> makes of its own with the
    /// reference updates its attack needs: the round's honest deltas (omniscient; its own delta when none came in
    /// time) or its bootstrap estimates.
    /// </summary>
    private async Task<float[]> AttackStageAsync(LocalUpdate local, CancellationToken cancellationToken)
    {
        var attack = _runtime.Attack;
        var round = local.Task.Round;
        if (!attack.IsAttacker)
        {
            _runtime.Colluding.Publish(round, _runtime.AgentId, local.Delta);
            return local.Delta;
        }

        if (!attack.IsActive(round))
        {
            return local.Delta;
        }

        var reference = local.Estimates;
        if (attack.NeedsHonestUpdates(round))
        {
            reference = await _runtime.Colluding.HonestUpdatesAsync(round, attack.Wait, cancellationToken);
            if (reference.Count == 0)
            {
                AgentLog.NoHonestUpdates(_logger, local.Task.TaskId, round, attack.Wait.TotalSeconds);
                reference = [local.Delta];
            }
        }

        var sent = attack.Apply(round, local.Delta, reference.Select(r => (ReadOnlyMemory<float>)r).ToList());
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var kind = attack.Kind.ToString().ToLowerInvariant();
            var (honestNorm, sentNorm) = (WeightVectors.L2Norm(local.Delta), WeightVectors.L2Norm(sent));
            AgentLog.AttackApplied(_logger, local.Task.TaskId, round, kind, reference.Count, honestNorm, sentNorm);
        }

        return sent;
    }

    private async Task<TaskResult> EvaluateAsync(EvaluateTask task, CancellationToken cancellationToken)
    {
        _currentTaskId = task.TaskId;
        _runtime.Status.Phase("evaluating", task.TaskId, task.Round);
        AgentLog.EvaluateStarted(_logger, task.TaskId, task.Round, task.ModelName);
        try
        {
            var bytes = await _transfers.DownloadAsync(task.Model, cancellationToken);
            var service = _runtime.Training;
            var evaluation = await _runtime.Torch.RunAsync(() => service.Evaluate(task, bytes), cancellationToken);
            AgentLog.EvaluateDone(_logger, task.TaskId, task.Round, evaluation.Samples, evaluation.Loss, evaluation.Accuracy);
            return new TaskResult
            {
                TaskId = task.TaskId,
                Round = task.Round,
                Ok = true,
                NumExamples = evaluation.Samples,
                Metrics =
                {
                    ["eval_loss"] = evaluation.Loss,
                    ["eval_accuracy"] = evaluation.Accuracy,
                    ["num_examples"] = evaluation.Samples,
                },
            };
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            AgentLog.TaskFailed(_logger, task.TaskId, task.Round, e.Message, e);
            return Failure(task.TaskId, task.Round, e);
        }
        finally
        {
            _currentTaskId = null;
        }
    }

    private static TaskResult Failure(string taskId, int round, Exception e) => new()
    {
        TaskId = taskId,
        Round = round,
        Ok = false,
        Error = e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message,
    };

    /// <summary>Seeded per agent and round, so a scenario drops the same tasks every time it runs.</summary>
    private bool SimulatedDropout(int round)
    {
        var simulation = _runtime.Options.Simulation;
        if (simulation.DropoutProbability <= 0)
        {
            return false;
        }

        var hash = 2166136261u;
        foreach (var c in _runtime.AgentId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        var random = new Random(unchecked((int)hash ^ (int)simulation.Seed ^ (round * 7919)));
        return random.NextDouble() < simulation.DropoutProbability;
    }
}
