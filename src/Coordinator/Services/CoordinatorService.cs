using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.Runs;
using Federated.Coordinator.Security;
using Federated.Coordinator.Transfers;
using Federated.Protocol;
using Federated.Protocol.Identity;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Services;

/// <summary>
/// Translates the <c>Coordinator</c> gRPC service to the coordinator's domain: authentication, protocol checks and
/// transfers here; every decision about rounds belongs to <see cref="RoundRunner"/>, which receives events. Bound to
/// gRPC through <see cref="CoordinatorWireBinding"/> (a request that does not parse is answered InvalidArgument).
/// </summary>
[BindServiceMethod(typeof(CoordinatorWireBinding), nameof(CoordinatorWireBinding.BindService))]
internal sealed partial class CoordinatorService(
    IOptions<CoordinatorOptions> options,
    AgentRegistry registry,
    TransferHub transfers,
    RunManager runs,
    RunStatus status,
    CoordinatorClock clock,
    EnrolmentGate gate,
    ChallengeBook challenges,
    EnrolmentRateLimiter enrolments,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<CoordinatorService> logger) : Protocol.V1.Coordinator.CoordinatorBase
{
    private readonly CoordinatorOptions _options = options.Value;

    /// <inheritdoc />
    public override Task<StatusReply> GetStatus(StatusRequest request, ServerCallContext context) =>
        Task.FromResult(new StatusReply
        {
            ProtocolVersion = ProtocolVersion.Current,
            CoordinatorVersion = typeof(CoordinatorService).Assembly.GetName().Version?.ToString() ?? "0",
            UptimeSeconds = clock.Uptime.TotalSeconds,
            CurrentRound = status.CurrentRound,
            TotalRounds = status.TotalRounds,
            ConnectedAgents = registry.ConnectedIds().Count,
            RunId = status.RunId,
            Finished = status.Finished,
            RoundSelected = status.RoundSelected,
            RoundResults = status.RoundResults,
            RoundFailures = status.RoundFailures,
            RoundElapsedSeconds = status.RoundStartedAt is { } started ? (time.GetUtcNow() - started).TotalSeconds : 0,
        });

    /// <inheritdoc />
    public override Task<Challenge> GetChallenge(ChallengeRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        CheckVersion(request.ProtocolVersion, context.Peer);
        return Task.FromResult(challenges.Issue(ChallengeSigning.EnrolPurpose, agentId: null)
            ?? throw new RpcException(new Status(StatusCode.ResourceExhausted, "Too many enrolments are in progress; retry shortly.")));
    }

    /// <inheritdoc />
    public override Task<EnrollReply> Enroll(EnrollRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        CheckVersion(request.ProtocolVersion, context.Peer);
        if (enrolments.TryAcquire() is { Ticks: > 0 } retry)
        {
            SecurityLog.EnrolRateLimited(logger, context.Peer, _options.Security.EnrolmentsPerMinute, retry.TotalSeconds);
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Enrolment rate limit reached ({_options.Security.EnrolmentsPerMinute:0.##} per minute); retry in {Math.Ceiling(retry.TotalSeconds):0} s."));
        }

        if (_options.EnrollmentKey.Length > 0 && request.EnrollmentKey != _options.EnrollmentKey)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "The enrolment key is wrong."));
        }

        if (request.AgentId.Length > 128 || request.AgentId.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "An agent id must be at most 128 characters without spaces or control characters."));
        }

        var admission = Refused(gate.Admit(request), request.AgentId, context.Peer, SecurityLog.EnrolRefused);
        var agent = registry.Enroll(admission.AgentId, request.Capabilities ?? new Capabilities(), admission.PublicKey);
        if (agent is null)
        {
            var reason = $"Agent id '{admission.AgentId}' is held by another key or was revoked.";
            SecurityLog.EnrolRefused(logger, admission.AgentId, context.Peer, StatusCode.PermissionDenied, reason);
            throw new RpcException(new Status(StatusCode.PermissionDenied, reason));
        }

        if (admission.PublicKey is not null)
        {
            SecurityLog.KeyAdmitted(logger, agent.Id, admission.Via);
        }

        LogEnrolled(logger, agent.Id, context.Peer, agent.Capabilities.Device, agent.Capabilities.NumExamples);
        var reply = new EnrollReply
        {
            AgentId = agent.Id,
            SessionToken = agent.Token,
            ProtocolVersion = ProtocolVersion.Current,
            RunId = runs.RunIdFor(agent.Id),
            ChunkBytes = _options.ChunkBytes,
            HeartbeatSeconds = _options.HeartbeatSeconds,
        };
        if (admission.PublicKey is not null)
        {
            reply.SessionChallenge = challenges.Issue(ChallengeSigning.SessionPurpose, agent.Id)
                ?? throw new RpcException(new Status(StatusCode.ResourceExhausted, "Too many enrolments are in progress; retry shortly."));
        }

        return Task.FromResult(reply);
    }

    private Admission Refused(Admission admission, string agentId, string peer, Action<ILogger, string, string, StatusCode, string> log)
    {
        if (admission.Ok)
        {
            return admission;
        }

        log(logger, agentId, peer, admission.Code, admission.Refusal!);
        throw new RpcException(new Status(admission.Code, admission.Refusal!));
    }

    /// <inheritdoc />
    public override async Task Session(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<CoordinatorMessage> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        var agent = Authenticate(context);
        var silence = TimeSpan.FromSeconds(_options.AgentTimeoutSeconds);
        using var watchdog = new CancellationTokenSource(silence, time);
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, watchdog.Token);
        if (!await requestStream.MoveNext(reading.Token).ConfigureAwait(false))
        {
            return;
        }

        if (requestStream.Current.KindCase != AgentMessage.KindOneofCase.Hello)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "A session must open with Hello."));
        }

        var hello = requestStream.Current.Hello;
        CheckVersion(hello.ProtocolVersion, context.Peer);
        if (hello.AgentId.Length > 0 && hello.AgentId != agent.Id)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"This session token belongs to agent '{agent.Id}', not '{hello.AgentId}'."));
        }

        Refused(gate.CheckSession(agent, hello), agent.Id, context.Peer, SecurityLog.SessionRefused);
        var connection = registry.Connect(agent, hello.Capabilities);
        LogConnected(logger, agent.Id, connection.Number, context.Peer);
        using var closing = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, connection.Closed.Token, lifetime.ApplicationStopping);
        var writer = WriteLoopAsync(connection, responseStream, new CoordinatorMessage { Welcome = Welcome(agent.Id) }, closing.Token);
        var reason = "closed by the agent";
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(reading.Token, connection.Closed.Token, lifetime.ApplicationStopping);
            while (await requestStream.MoveNext(linked.Token).ConfigureAwait(false))
            {
                watchdog.CancelAfter(silence);
                registry.Touch(agent);
                var message = requestStream.Current;
                switch (message.KindCase)
                {
                    case AgentMessage.KindOneofCase.Result:
                        Route(agent.Id, new ResultReceived(agent.Id, message.Result));
                        break;
                    case AgentMessage.KindOneofCase.Secagg:
                        Route(agent.Id, new SecAggReceived(agent.Id, message.Secagg));
                        break;
                    case AgentMessage.KindOneofCase.Heartbeat when message.Heartbeat.WantAck:
                        // Dropped rather than waited for when the agent does not read its session (the outbox is bounded).
                        connection.Outbox.Writer.TryWrite(new CoordinatorMessage { HeartbeatAck = new HeartbeatAck { Sequence = message.Heartbeat.Sequence } });
                        break;
                    case AgentMessage.KindOneofCase.Heartbeat:
                        break;
                    case AgentMessage.KindOneofCase.Hello:
                        throw new RpcException(new Status(StatusCode.InvalidArgument, "Hello may only open a session."));
                    default:
                        throw new RpcException(new Status(StatusCode.InvalidArgument, $"Unknown session message {message.KindCase}."));
                }
            }
        }
        catch (OperationCanceledException) when (watchdog.IsCancellationRequested)
        {
            reason = $"silent for {silence.TotalSeconds:F0} s";
        }
        catch (OperationCanceledException) when (connection.Closed.IsCancellationRequested)
        {
            reason = agent.Revoked ? "revoked" : "replaced by a newer session";
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            reason = "the coordinator is shutting down";
        }
        catch (Exception e) when (e is IOException or OperationCanceledException || (e is RpcException rpc && rpc.StatusCode == StatusCode.Cancelled))
        {
            reason = "stream broken";
        }
        finally
        {
            registry.Disconnect(connection);
            LogDisconnected(logger, agent.Id, connection.Number, reason);
        }

        try
        {
            await writer.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The stream is gone; nothing more to deliver.
        }

        if (agent.Revoked)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"Agent '{agent.Id}' was revoked."));
        }
    }

    /// <summary>The session's first message: the run that holds the agent and its round.</summary>
    private Welcome Welcome(string agentId) =>
        runs.OwnerOf(agentId) is { } run
            ? new Welcome { RunId = run.Record.RunId, CurrentRound = run.Status.CurrentRound }
            : new Welcome { RunId = status.RunId, CurrentRound = status.CurrentRound };

    /// <summary>
    /// Hands a session event to the run that holds the agent. When none does (its run ended and the configured run is not
    /// running), a result is answered here: its upload is dropped and the agent told why.
    /// </summary>
    private void Route(string agentId, RoundEvent roundEvent)
    {
        if (runs.EventsFor(agentId) is { } events)
        {
            events.Post(roundEvent);
            return;
        }

        if (roundEvent is ResultReceived { Result: var result })
        {
            transfers.Discard(agentId, result.UploadTransferId);
            registry.TrySend(agentId, new CoordinatorMessage { Rejected = new ResultRejected { TaskId = result.TaskId, Reason = "no run holds this agent now (its run has ended)" } });
            LogUnrouted(logger, agentId, result.TaskId);
        }
    }

    private static async Task WriteLoopAsync(AgentConnection connection, IServerStreamWriter<CoordinatorMessage> stream, CoordinatorMessage first, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(first, cancellationToken).ConfigureAwait(false);
        await foreach (var message in connection.Outbox.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await stream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public override async Task Download(DownloadRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        var agent = Authenticate(context);
        var payload = transfers.FindOutgoing(request.TransferId)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"No payload '{request.TransferId}' is being served (its round may have closed)."));
        if (request.StartSequence < 0 || request.StartSequence >= payload.ChunkCount)
        {
            throw new RpcException(new Status(StatusCode.OutOfRange, $"Payload '{request.TransferId}' has chunks 0..{payload.ChunkCount - 1}; {request.StartSequence} was asked for."));
        }

        var counters = transfers.CountersFor(agent.Id);
        for (var sequence = request.StartSequence; sequence < payload.ChunkCount; sequence++)
        {
            var chunk = payload.GetChunk(sequence);

            // Counted before the write: the write's continuation can run after the agent has already trained on the
            // model and the round has closed its byte counters, which moved the last chunk into the next round's row.
            counters.Sent(chunk);
            await responseStream.WriteAsync(chunk, context.CancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public override async Task<UploadReply> Upload(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(context);
        var agent = Authenticate(context);
        if (!await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "An upload needs at least one chunk."));
        }

        var first = requestStream.Current;
        UploadSlot slot;
        try
        {
            slot = transfers.OpenUpload(agent.Id, first.TransferId, first.Header, _options.MaxPayloadBytes);
        }
        catch (TransferException e)
        {
            LogUploadRejected(logger, agent.Id, first.TransferId, e.Message);
            throw e.ToRpcException();
        }

        var counters = transfers.CountersFor(agent.Id);
        await slot.Gate.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        try
        {
            var chunk = first;
            while (true)
            {
                if (chunk.TransferId != slot.Assembler.TransferId)
                {
                    throw new TransferException($"One upload stream carries one transfer ('{slot.Assembler.TransferId}'), not '{chunk.TransferId}'.");
                }

                counters.Received(chunk);
                var expected = slot.Assembler.IsComplete ? -1 : slot.Assembler.NextSequence;
                slot.Assembler.Accept(chunk);
                if (chunk.Sequence == expected)
                {
                    // Accepted in order: the round loop may decode it into the aggregate while the rest streams in.
                    runs.EventsFor(agent.Id)?.Post(new UploadChunkReceived(agent.Id, slot.Assembler.TransferId, slot.Header, chunk.Sequence, chunk.Data.Memory));
                }

                if (!await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
                {
                    break;
                }

                chunk = requestStream.Current;
            }

            return new UploadReply { TransferId = slot.Assembler.TransferId, Complete = slot.Assembler.IsComplete, NextSequence = slot.Assembler.NextSequence };
        }
        catch (TransferException e)
        {
            LogUploadRejected(logger, agent.Id, slot.Assembler.TransferId, e.Message);
            throw e.ToRpcException();
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    /// <inheritdoc />
    public override Task<UploadStateReply> GetUploadState(UploadStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var agent = Authenticate(context);
        return Task.FromResult(transfers.UploadState(agent.Id, request.TransferId));
    }

    private AgentRecord Authenticate(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue("authorization");
        const string Scheme = "Bearer ";
        var token = header is not null && header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : null;
        return registry.Authenticate(token)
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "Missing or unknown session token: enrol first and send 'authorization: Bearer <token>'."));
    }

    private void CheckVersion(uint version, string peer)
    {
        if (version == ProtocolVersion.Current)
        {
            return;
        }

        LogVersionMismatch(logger, peer, version, ProtocolVersion.Current);
        throw new RpcException(new Status(StatusCode.FailedPrecondition,
            $"Protocol version {version} is not supported: this coordinator speaks version {ProtocolVersion.Current}. Upgrade the agent."));
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Peer {Peer} speaks protocol {PeerVersion}; this coordinator speaks {Version}")]
    private static partial void LogVersionMismatch(ILogger logger, string peer, uint peerVersion, uint version);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Agent {AgentId} enrolled from {Peer} ({Device}, {Examples} examples)")]
    private static partial void LogEnrolled(ILogger logger, string agentId, string peer, string device, long examples);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Agent {AgentId} connected (session {Session}) from {Peer}")]
    private static partial void LogConnected(ILogger logger, string agentId, long session, string peer);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Agent {AgentId} disconnected (session {Session}): {Reason}")]
    private static partial void LogDisconnected(ILogger logger, string agentId, long session, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Result {TaskId} of agent {AgentId} dropped: no run holds the agent now")]
    private static partial void LogUnrouted(ILogger logger, string agentId, string taskId);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Upload {TransferId} of agent {AgentId} rejected: {Reason}")]
    private static partial void LogUploadRejected(ILogger logger, string agentId, string transferId, string reason);
}
