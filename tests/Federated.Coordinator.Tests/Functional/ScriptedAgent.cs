using System.Threading.Channels;
using Federated.Learning.SecureAggregation;
using Federated.Protocol;
using Federated.Protocol.Identity;
using Federated.Protocol.Transfers;
using Google.Protobuf;
using Federated.Protocol.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>
/// An agent scripted at the wire level: it enrols, opens a session and lets the test decide what to do with each
/// task (answer, stay silent, hang up, send something malformed).
/// </summary>
internal sealed class ScriptedAgent : IAsyncDisposable
{
    private readonly GrpcChannel _channel;
    private readonly CancellationTokenSource _cancel = new();
    private readonly Channel<CoordinatorMessage> _inbox = Channel.CreateUnbounded<CoordinatorMessage>();
    private AsyncDuplexStreamingCall<AgentMessage, CoordinatorMessage>? _session;
    private Task? _reader;

    private ScriptedAgent(GrpcChannel channel, Protocol.V1.Coordinator.CoordinatorClient client, EnrollReply enrolment, AgentIdentity? identity = null)
    {
        Identity = identity;
        _channel = channel;
        Client = client;
        Enrolment = enrolment;
        Auth = new Metadata { { "authorization", $"Bearer {enrolment.SessionToken}" } };
    }

    public Protocol.V1.Coordinator.CoordinatorClient Client { get; }

    public EnrollReply Enrolment { get; }

    public Metadata Auth { get; }

    public string Id => Enrolment.AgentId;

    /// <summary>The key the agent enrolled with (null: keyless).</summary>
    public AgentIdentity? Identity { get; }

    /// <summary>The Hello the session opened with.</summary>
    public Hello? SentHello { get; private set; }

    /// <summary>The status the session ended with, when it ended with an error.</summary>
    public Status? EndStatus { get; private set; }

    /// <summary>Completes when the coordinator's side of the session ended.</summary>
    public Task Closed => _reader ?? Task.CompletedTask;

    /// <summary>A challenge-signed enrolment request (the real client's shape).</summary>
    public static async Task<EnrollRequest> SignedEnrolRequestAsync(Protocol.V1.Coordinator.CoordinatorClient client, string id, AgentIdentity identity, string? token = null, string? signAs = null)
    {
        var challenge = await client.GetChallengeAsync(new ChallengeRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = id }, deadline: DateTime.UtcNow.AddSeconds(10));
        var payload = ChallengeSigning.Payload(ChallengeSigning.EnrolPurpose, challenge.CoordinatorId, signAs ?? id, challenge.Nonce.Span, challenge.ExpiresUnixMs, identity.PublicKey);
        return new EnrollRequest
        {
            ProtocolVersion = ProtocolVersion.Current,
            AgentId = id,
            Capabilities = new Capabilities { Device = "cpu", NumExamples = 100 },
            PublicKey = ByteString.CopyFrom(identity.PublicKey),
            ChallengeNonce = challenge.Nonce,
            Signature = ByteString.CopyFrom(identity.Sign(payload)),
            EnrolmentToken = token ?? "",
        };
    }

    /// <summary>Enrols with a key over <paramref name="channel"/> (owned by the agent from then on).</summary>
    public static async Task<ScriptedAgent> EnrollWithKeyAsync(GrpcChannel channel, string id, AgentIdentity identity, string? token = null)
    {
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        try
        {
            var reply = await client.EnrollAsync(await SignedEnrolRequestAsync(client, id, identity, token), deadline: DateTime.UtcNow.AddSeconds(10));
            return new ScriptedAgent(channel, client, reply, identity);
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    /// <summary>The Hello of a session, signed over the enrolment's session challenge when the agent has a key.</summary>
    public Hello MakeHello()
    {
        var hello = new Hello { AgentId = Id, ProtocolVersion = ProtocolVersion.Current };
        if (Identity is not null && Enrolment.SessionChallenge is { } challenge)
        {
            var payload = ChallengeSigning.Payload(ChallengeSigning.SessionPurpose, challenge.CoordinatorId, Id, challenge.Nonce.Span, challenge.ExpiresUnixMs, Identity.PublicKey);
            hello.ChallengeNonce = challenge.Nonce;
            hello.Signature = ByteString.CopyFrom(Identity.Sign(payload));
        }

        return hello;
    }

    public static async Task<ScriptedAgent> EnrollAsync(string address, string id, long examples = 100, IDictionary<string, string>? labels = null)
    {
        var channel = GrpcChannel.ForAddress(address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var reply = await client.EnrollAsync(new EnrollRequest
        {
            ProtocolVersion = ProtocolVersion.Current,
            AgentId = id,
            Capabilities = new Capabilities { Device = "cpu", NumExamples = examples, Labels = { labels ?? new Dictionary<string, string>() } },
        }, deadline: DateTime.UtcNow.AddSeconds(10));
        return new ScriptedAgent(channel, client, reply);
    }

    /// <summary>Opens the session with Hello and starts collecting coordinator messages.</summary>
    public async Task ConnectAsync()
    {
        _session = Client.Session(Auth, cancellationToken: _cancel.Token);
        SentHello = MakeHello();
        await _session.RequestStream.WriteAsync(new AgentMessage { Hello = SentHello });
        _reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var message in _session.ResponseStream.ReadAllAsync(_cancel.Token))
                {
                    await _inbox.Writer.WriteAsync(message);
                }
            }
            catch (RpcException e)
            {
                EndStatus = e.Status;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
            }
            finally
            {
                _inbox.Writer.TryComplete();
            }
        });
    }

    /// <summary>The next message of kind <paramref name="kind"/> (others are skipped).</summary>
    public async Task<CoordinatorMessage> NextAsync(CoordinatorMessage.KindOneofCase kind, TimeSpan? timeout = null)
    {
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var message = await _inbox.Reader.ReadAsync(limit.Token);
            if (message.KindCase == kind)
            {
                return message;
            }
        }
    }

    /// <summary>Downloads a payload whole.</summary>
    public async Task<byte[]> DownloadAsync(PayloadRef reference)
    {
        var assembler = new ChunkAssembler(reference.TransferId, reference.TotalBytes, reference.ChunkCount, reference.Sha256.Span, long.MaxValue);
        using var call = Client.Download(new DownloadRequest { TransferId = reference.TransferId }, Auth, deadline: DateTime.UtcNow.AddSeconds(30));
        await foreach (var chunk in call.ResponseStream.ReadAllAsync())
        {
            assembler.Accept(chunk);
        }

        return assembler.Bytes;
    }

    /// <summary>Downloads the task's model and uploads <paramref name="makeDelta"/>(global) as the update.</summary>
    public async Task<string> UploadUpdateAsync(TrainTask task, Func<float[], float[]> makeDelta, string? fingerprint = null)
    {
        var payload = PayloadCodec.Parse(await DownloadAsync(task.Model), task.LayoutFingerprint);
        var global = PayloadCodec.ReadDense(payload, PayloadCodec.ModelTensor);
        var update = new Payload { LayoutFingerprint = fingerprint ?? task.LayoutFingerprint };
        PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, makeDelta(global));
        var sealedPayload = new SealedPayload($"{Id}-{task.TaskId}", update, Enrolment.ChunkBytes);
        await UploadAsync(sealedPayload, task.TaskId, task.Round, 0, sealedPayload.ChunkCount);
        return sealedPayload.TransferId;
    }

    /// <summary>Answers <paramref name="task"/>: uploads <paramref name="makeDelta"/> of its model and reports 100 examples, 7 local steps.</summary>
    public async Task AnswerAsync(TrainTask task, Func<float[], float[]> makeDelta, string? fingerprint = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        var transfer = await UploadUpdateAsync(task, makeDelta, fingerprint);
        await SendResultAsync(new TaskResult
        {
            TaskId = task.TaskId,
            Round = task.Round,
            Ok = true,
            UploadTransferId = transfer,
            NumExamples = 100,
            LocalSteps = 7,
            Metrics = { ["train_seconds"] = 0.1, ["train_loss"] = 1.0 },
        });
    }

    /// <summary>Uploads chunks [from, to) of <paramref name="payload"/> in one stream (the header declares <paramref name="numExamples"/>; 0 = not declared).</summary>
    public async Task<UploadReply> UploadAsync(SealedPayload payload, string taskId, int round, int from, int to, Func<Chunk, Chunk>? tamper = null, long numExamples = 0)
    {
        using var call = Client.Upload(Auth, deadline: DateTime.UtcNow.AddSeconds(60));
        for (var sequence = from; sequence < to; sequence++)
        {
            var chunk = payload.GetChunk(sequence);
            if (sequence == from)
            {
                chunk.Header = payload.ToUploadHeader(taskId, round, numExamples);
            }

            try
            {
                await call.RequestStream.WriteAsync(tamper is null ? chunk : tamper(chunk));
            }
            catch (RpcException)
            {
                // The server ended the call early (it rejected a chunk): its status is in the response.
                return await call.ResponseAsync;
            }
        }

        await call.RequestStream.CompleteAsync();
        return await call.ResponseAsync;
    }

    public Task SendResultAsync(TaskResult result) =>
        _session!.RequestStream.WriteAsync(new AgentMessage { Result = result });

    /// <summary>Hangs up the session abruptly.</summary>
    public async Task DisconnectAsync()
    {
        await _cancel.CancelAsync();
        if (_reader is not null)
        {
            await _reader;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync();
        _session?.Dispose();
        _channel.Dispose();
        _cancel.Dispose();
    }
}
