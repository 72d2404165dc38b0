using System.Security.Cryptography;
using Federated.Protocol;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Simulations.Fault;

/// <summary>The ways a <see cref="HostileAgent"/> misbehaves.</summary>
internal enum Hostility
{
    /// <summary>An update of the right layout with NaN and infinite values in it.</summary>
    NaNInf,

    /// <summary>Updates of the wrong layout: a foreign fingerprint in odd rounds, one weight short in even rounds.</summary>
    WrongLayout,

    /// <summary>A chunk above the coordinator's message limit, and a header that declares a 64 GiB upload.</summary>
    Oversized,

    /// <summary>Random bytes with a valid header, CRC and SHA-256 (not a payload), and a chunk whose CRC is wrong.</summary>
    Garbage,

    /// <summary>Chunk 0, then chunk 2 before chunk 1.</summary>
    OutOfOrder,
}

/// <summary>
/// An agent at the wire level that enrols and heartbeats like any agent but answers every training task with a hostile
/// upload, then reports the task as done with that upload (as a buggy or malicious agent would). It records what the
/// coordinator said: the upload RPC's status, whether the upload was complete, and the <c>ResultRejected</c> reasons.
/// </summary>
internal sealed class HostileAgent(string address, string agentId, Hostility hostility)
{
    private readonly List<string> _outcomes = [];

    /// <summary>Training tasks answered.</summary>
    public int Tasks { get; private set; }

    /// <summary>Upload RPCs the coordinator refused with a status (the transfer never completed).</summary>
    public int UploadsRefused { get; private set; }

    /// <summary>Results the coordinator answered with <c>ResultRejected</c>.</summary>
    public int ResultsRejected { get; private set; }

    /// <summary>Whether, after an out-of-order chunk was refused, the coordinator still held the chunks before it.</summary>
    public int ChunksKeptAfterRefusal { get; private set; }

    /// <summary>What happened to each task, one line each (for the run's log).</summary>
    public IReadOnlyList<string> Outcomes => _outcomes;

    /// <summary>Enrols, opens the session and answers tasks until <paramref name="cancellationToken"/> fires or the session ends.</summary>
    public async Task RunAsync(int chunkLimitBytes, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { MaxSendMessageSize = null });
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var enrolment = await client.EnrollAsync(
            new EnrollRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = agentId, Capabilities = new Capabilities { Device = "cpu", NumExamples = 1000 } },
            deadline: DateTime.UtcNow.AddSeconds(30),
            cancellationToken: cancellationToken).ResponseAsync.ConfigureAwait(false);
        var auth = new Metadata { { "authorization", "Bearer " + enrolment.SessionToken } };
        using var session = client.Session(auth, cancellationToken: cancellationToken);
        var writeLock = new SemaphoreSlim(1, 1);
        async Task SendAsync(AgentMessage message)
        {
            await writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await session.RequestStream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                writeLock.Release();
            }
        }

        await SendAsync(new AgentMessage { Hello = new Hello { AgentId = agentId, ProtocolVersion = ProtocolVersion.Current, Capabilities = new Capabilities { Device = "cpu", NumExamples = 1000 } } }).ConfigureAwait(false);
        using var stopBeats = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var beats = Task.Run(
            async () =>
            {
                ulong sequence = 0;
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), TimeProvider.System);
                while (await timer.WaitForNextTickAsync(stopBeats.Token).ConfigureAwait(false))
                {
                    await SendAsync(new AgentMessage { Heartbeat = new Heartbeat { Sequence = ++sequence } }).ConfigureAwait(false);
                }
            },
            stopBeats.Token);
        try
        {
            while (await session.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                var message = session.ResponseStream.Current;
                switch (message.KindCase)
                {
                    case CoordinatorMessage.KindOneofCase.Train:
                        Tasks++;
                        var transferId = await UploadAsync(client, auth, message.Train, chunkLimitBytes, cancellationToken).ConfigureAwait(false);
                        await SendAsync(new AgentMessage
                        {
                            Result = new TaskResult { TaskId = message.Train.TaskId, Round = message.Train.Round, Ok = true, UploadTransferId = transferId, NumExamples = 1000, LocalSteps = 16 },
                        }).ConfigureAwait(false);
                        break;
                    case CoordinatorMessage.KindOneofCase.Rejected:
                        ResultsRejected++;
                        _outcomes.Add($"result of {message.Rejected.TaskId} rejected: {message.Rejected.Reason}");
                        break;
                    case CoordinatorMessage.KindOneofCase.Shutdown:
                        return;
                    default:
                        break;
                }
            }
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Cancelled or StatusCode.Unavailable or StatusCode.Internal)
        {
            // The run ended (or the coordinator went away) under the agent.
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            await stopBeats.CancelAsync().ConfigureAwait(false);
            try
            {
                await beats.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException or InvalidOperationException)
            {
            }
        }
    }

    private async Task<string> UploadAsync(Protocol.V1.Coordinator.CoordinatorClient client, Metadata auth, TrainTask task, int chunkLimitBytes, CancellationToken cancellationToken)
    {
        var global = await DownloadModelAsync(client, auth, task, cancellationToken).ConfigureAwait(false);
        var transferId = $"{agentId}-{task.TaskId}";
        var update = new Payload { LayoutFingerprint = task.LayoutFingerprint };
        var delta = new float[global.Length];
        SealedPayload sealedPayload;
        switch (hostility)
        {
            case Hostility.NaNInf:
                delta[0] = float.NaN;
                delta[^1] = task.Round % 2 == 0 ? float.PositiveInfinity : float.NegativeInfinity;
                PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, delta);
                sealedPayload = new SealedPayload(transferId, update, PayloadCodec.DefaultChunkBytes);
                return await SendChunksAsync(client, auth, task, sealedPayload, [.. Enumerable.Range(0, sealedPayload.ChunkCount)], "NaN/Inf update", cancellationToken).ConfigureAwait(false);
            case Hostility.WrongLayout:
                if (task.Round % 2 == 1)
                {
                    update.LayoutFingerprint = "0123456789abcdef0123456789abcdef";
                }
                else
                {
                    delta = new float[global.Length - 1];
                }

                PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, delta);
                sealedPayload = new SealedPayload(transferId, update, PayloadCodec.DefaultChunkBytes);
                return await SendChunksAsync(client, auth, task, sealedPayload, [.. Enumerable.Range(0, sealedPayload.ChunkCount)], task.Round % 2 == 1 ? "foreign layout fingerprint" : "one weight short", cancellationToken).ConfigureAwait(false);
            case Hostility.Oversized:
                if (task.Round % 2 == 1)
                {
                    // One chunk above the coordinator's gRPC message limit.
                    var big = new byte[chunkLimitBytes + (1 << 20)];
                    RandomNumberGenerator.Fill(big);
                    sealedPayload = new SealedPayload(transferId, big, big.Length);
                    return await SendChunksAsync(client, auth, task, sealedPayload, [0], "chunk over the message limit", cancellationToken).ConfigureAwait(false);
                }

                PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, delta);
                sealedPayload = new SealedPayload(transferId, update, PayloadCodec.DefaultChunkBytes);
                return await SendChunksAsync(client, auth, task, sealedPayload, [0], "header declaring 64 GiB", cancellationToken, header => header.TotalBytes = 64L << 30).ConfigureAwait(false);
            case Hostility.Garbage:
                var garbage = new byte[global.Length * sizeof(float)];
                RandomNumberGenerator.Fill(garbage);
                sealedPayload = new SealedPayload(transferId, garbage, PayloadCodec.DefaultChunkBytes);
                if (task.Round % 2 == 0)
                {
                    return await SendChunksAsync(client, auth, task, sealedPayload, [.. Enumerable.Range(0, sealedPayload.ChunkCount)], "chunk with a wrong CRC", cancellationToken, corruptCrc: true).ConfigureAwait(false);
                }

                return await SendChunksAsync(client, auth, task, sealedPayload, [.. Enumerable.Range(0, sealedPayload.ChunkCount)], "random bytes (valid CRC and SHA-256)", cancellationToken).ConfigureAwait(false);
            default:
                PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, delta);
                sealedPayload = new SealedPayload(transferId, update, Math.Max(16 * 1024, global.Length * sizeof(float) / 4));
                var id = await SendChunksAsync(client, auth, task, sealedPayload, [0, 2, 1], "chunks 0, 2, 1", cancellationToken).ConfigureAwait(false);
                var state = await client.GetUploadStateAsync(new UploadStateRequest { TransferId = transferId }, auth, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: cancellationToken).ResponseAsync.ConfigureAwait(false);
                if (state.Known && state.NextSequence == 1)
                {
                    ChunksKeptAfterRefusal++;
                }

                _outcomes.Add($"{task.TaskId}: after the refusal the coordinator holds the upload up to chunk {state.NextSequence} (known {state.Known})");
                return id;
        }
    }

    private async Task<string> SendChunksAsync(
        Protocol.V1.Coordinator.CoordinatorClient client,
        Metadata auth,
        TrainTask task,
        SealedPayload payload,
        int[] order,
        string what,
        CancellationToken cancellationToken,
        Action<UploadHeader>? tamperHeader = null,
        bool corruptCrc = false)
    {
        using var call = client.Upload(auth, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: cancellationToken);
        try
        {
            foreach (var sequence in order)
            {
                var chunk = payload.GetChunk(sequence);
                if (sequence == 0)
                {
                    chunk.Header = payload.ToUploadHeader(task.TaskId, task.Round, 1000);
                    tamperHeader?.Invoke(chunk.Header);
                }

                if (corruptCrc)
                {
                    chunk.Crc32C ^= 0x5A5A5A5A;
                }

                await call.RequestStream.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
            }

            await call.RequestStream.CompleteAsync().ConfigureAwait(false);
            var reply = await call.ResponseAsync.ConfigureAwait(false);
            _outcomes.Add($"{task.TaskId}: {what}: upload answered complete={reply.Complete}, next chunk {reply.NextSequence}");
        }
        catch (RpcException e) when (e.StatusCode is not StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
        {
            try
            {
                await call.ResponseAsync.ConfigureAwait(false);
            }
            catch (RpcException)
            {
            }

            var status = call.GetStatus();
            UploadsRefused++;
            _outcomes.Add($"{task.TaskId}: {what}: upload refused, {status.StatusCode}: {status.Detail}");
        }

        return payload.TransferId;
    }

    private static async Task<float[]> DownloadModelAsync(Protocol.V1.Coordinator.CoordinatorClient client, Metadata auth, TrainTask task, CancellationToken cancellationToken)
    {
        var reference = task.Model;
        var assembler = new ChunkAssembler(reference.TransferId, reference.TotalBytes, reference.ChunkCount, reference.Sha256.Span, long.MaxValue);
        using var call = client.Download(new DownloadRequest { TransferId = reference.TransferId }, auth, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: cancellationToken);
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            assembler.Accept(call.ResponseStream.Current);
        }

        return PayloadCodec.ReadDense(PayloadCodec.Parse(assembler.Bytes, task.LayoutFingerprint), PayloadCodec.ModelTensor);
    }
}
