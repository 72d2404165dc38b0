using Federated.Protocol;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Federated.Simulations.Fuzz;

/// <summary>
/// Every RPC of the coordinator's service as a fuzz target against a live coordinator: the input's bytes go onto the
/// wire as the request message(s) unparsed (a raw marshaller), so the coordinator's own deserialisation and handlers see
/// them. Streaming calls take a sequence of frames (varint length, bytes). Calls carry the session token of an agent
/// the campaign enrolled, so that the handlers behind authentication are reached too; one call in eight goes without it.
/// A call must end with a status: OK, or an error status the handler chose. A status with the text grpc-dotnet gives an
/// exception that escaped a handler, or no answer within the timeout, breaks the contract.
/// </summary>
internal static class GrpcTargets
{
    private const string Service = "federated.v1.Coordinator";
    private const int MaxFrames = 64;

    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(static b => b, static b => b);

    private static readonly Method<byte[], byte[]> Probe = new(MethodType.Unary, Service, "GetStatus", Raw, Raw);

    /// <summary>The targets, calling through <paramref name="invoker"/> with the session token <paramref name="token"/> gives.</summary>
    public static IReadOnlyList<IFuzzTarget> All(CallInvoker invoker, Func<string> token)
    {
        var hello = new AgentMessage { Hello = new Hello { AgentId = "fuzz-agent", ProtocolVersion = ProtocolVersion.Current, Capabilities = new Capabilities { Device = "cpu", NumExamples = 10 } } };
        var result = new AgentMessage { Result = new TaskResult { TaskId = "task-1", Round = 1, Ok = true, UploadTransferId = "upload-1", NumExamples = 10, Metrics = { ["train_loss"] = 0.5 } } };
        var heartbeat = new AgentMessage { Heartbeat = new Heartbeat { TaskId = "task-1" } };
        IMessage[] chunks = DecoderTargets.UploadChunks(DecoderTargets.UploadPayload("q8", 1), 1024, "task-1");
        return
        [
            new Target(invoker, token, MethodType.Unary, "GetStatus", [[new StatusRequest { ProtocolVersion = ProtocolVersion.Current }], [new StatusRequest()]]),
            new Target(invoker, token, MethodType.Unary, "GetChallenge", [[new ChallengeRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = "fuzz-agent" }]]),
            new Target(invoker, token, MethodType.Unary, "Enroll", [[new EnrollRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = "fuzz-enrol", Capabilities = new Capabilities { Device = "cpu", NumExamples = 10, Models = { "mlp" }, Labels = { ["zone"] = "a" } } }]]),
            new Target(invoker, token, MethodType.Unary, "GetUploadState", [[new UploadStateRequest { TransferId = "upload-fuzz" }]]),
            new Target(invoker, token, MethodType.ServerStreaming, "Download", [[new DownloadRequest { TransferId = "model-r1", StartSequence = 0 }], [new DownloadRequest { TransferId = "upload-fuzz", StartSequence = 2 }]]),
            new Target(invoker, token, MethodType.ClientStreaming, "Upload", [chunks, chunks[..1]], DecoderTargets.GenerateUpload),
            new Target(invoker, token, MethodType.DuplexStreaming, "Session", [[hello, heartbeat, result], [hello], [heartbeat]]),
        ];
    }

    /// <summary>The frames a streaming input carries: varint length, then that many bytes (clamped to what is left).</summary>
    internal static List<byte[]> Frames(byte[] input)
    {
        var frames = new List<byte[]>();
        var at = 0;
        while (at < input.Length && frames.Count < MaxFrames)
        {
            ulong length = 0;
            var shift = 0;
            while (at < input.Length && shift < 35)
            {
                var b = input[at++];
                length |= (ulong)(b & 0x7F) << shift;
                shift += 7;
                if ((b & 0x80) == 0)
                {
                    break;
                }
            }

            var take = (int)Math.Min(length, (ulong)(input.Length - at));
            frames.Add(input.AsSpan(at, take).ToArray());
            at += take;
        }

        return frames;
    }

    /// <summary>The frame encoding of <paramref name="messages"/>.</summary>
    internal static byte[] Encode(IEnumerable<IMessage> messages)
    {
        using var buffer = new MemoryStream();
        foreach (var message in messages)
        {
            message.WriteDelimitedTo(buffer);
        }

        return buffer.ToArray();
    }

    /// <summary>True when a status says an exception escaped the handler (grpc-dotnet's text for it), not a choice.</summary>
    internal static bool IsUnhandled(Status status) =>
        status.StatusCode == StatusCode.Unknown || status.Detail.StartsWith("Exception was thrown by handler", StringComparison.Ordinal);

    private sealed class Target(CallInvoker invoker, Func<string> token, MethodType type, string method, IMessage[][] seeds, Func<Mutator, byte[]>? generator = null) : IFuzzTarget
    {
        private readonly Method<byte[], byte[]> _method = new(type, Service, method, Raw, Raw);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _statuses = new(StringComparer.Ordinal);
        private int _calls;

        public IReadOnlyDictionary<string, int>? Breakdown => _statuses;

        public string Name => $"grpc:{method}";

        public string Contract => "an error status chosen by the coordinator";

        public bool MeasuresAllocation => false;

        public IReadOnlyList<byte[]> Seeds { get; } = seeds.Select(s => type is MethodType.Unary or MethodType.ServerStreaming ? s[0].ToByteArray() : Encode(s)).ToList();

        public long AllocationLimit(int length) => long.MaxValue;

        public byte[]? Generate(Mutator mutator)
        {
            // The target's own generator (if any) half the time; otherwise well-formed messages with extreme fields.
            if (generator is not null && mutator.Next(2) == 0)
            {
                return generator(mutator);
            }

            var request = Protocol.V1.Coordinator.Descriptor.FindMethodByName(method).InputType;
            return type is MethodType.Unary or MethodType.ServerStreaming
                ? MessageGenerator.Message(request, mutator).ToByteArray()
                : MessageGenerator.Stream(request, mutator, 5);
        }

        public async ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            var headers = new Metadata();
            switch (Interlocked.Increment(ref _calls) % 8)
            {
                case 0:
                    break;
                case 4:
                    headers.Add("authorization", "Bearer " + Convert.ToHexString(input.AsSpan(0, Math.Min(16, input.Length))));
                    break;
                default:
                    headers.Add("authorization", "Bearer " + token());
                    break;
            }

            var options = new CallOptions(headers, cancellationToken: cancellationToken);
            try
            {
                switch (type)
                {
                    case MethodType.Unary:
                        await invoker.AsyncUnaryCall(_method, null, options, input).ResponseAsync.ConfigureAwait(false);
                        break;
                    case MethodType.ServerStreaming:
                        using (var call = invoker.AsyncServerStreamingCall(_method, null, options, input))
                        {
                            while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                            {
                            }
                        }

                        break;
                    case MethodType.ClientStreaming:
                        using (var call = invoker.AsyncClientStreamingCall(_method, null, options))
                        {
                            await WriteAllAsync(call.RequestStream, input).ConfigureAwait(false);
                            await call.ResponseAsync.ConfigureAwait(false);
                        }

                        break;
                    default:
                        using (var call = invoker.AsyncDuplexStreamingCall(_method, null, options))
                        {
                            await WriteAllAsync(call.RequestStream, input).ConfigureAwait(false);
                            while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                            {
                            }
                        }

                        break;
                }

                _statuses.AddOrUpdate(nameof(StatusCode.OK), 1, static (_, n) => n + 1);
                return FuzzVerdict.Accepted;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException("the call was cancelled", e, cancellationToken);
            }
            catch (RpcException e) when (!IsUnhandled(e.Status) && e.StatusCode != StatusCode.Unavailable && !IsConnectionLevel(e))
            {
                _statuses.AddOrUpdate(e.StatusCode.ToString(), 1, static (_, n) => n + 1);
                return FuzzVerdict.Rejected;
            }
            catch (Exception e) when (IsConnectionLevel(e) || e is RpcException { StatusCode: StatusCode.Unavailable })
            {
                // Kestrel closes a connection that resets streams too fast (its HTTP/2 rapid-reset defence answers
                // ENHANCE_YOUR_CALM), which the fuzzer's abandoned streams can provoke. That is the server defending
                // itself, provided it still answers on a new connection; if it does not, the coordinator is down.
                if (!await AnswersAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw;
                }

                var label = e.ToString().Contains("ENHANCE_YOUR_CALM", StringComparison.Ordinal) ? "connection closed (ENHANCE_YOUR_CALM)" : "connection closed";
                _statuses.AddOrUpdate(label, 1, static (_, n) => n + 1);
                return FuzzVerdict.Rejected;
            }
        }

        private static bool IsConnectionLevel(Exception e) =>
            e is HttpRequestException or System.Net.Http.HttpProtocolException or IOException
            || (e.InnerException is { } inner && IsConnectionLevel(inner));

        private async Task<bool> AnswersAsync(CancellationToken cancellationToken)
        {
            for (var attempt = 0; attempt < 5; attempt++)
            {
                try
                {
                    await invoker.AsyncUnaryCall(Probe, null, new CallOptions(cancellationToken: cancellationToken), new StatusRequest { ProtocolVersion = ProtocolVersion.Current }.ToByteArray()).ResponseAsync.ConfigureAwait(false);
                    return true;
                }
                catch (RpcException) when (attempt < 4)
                {
                    // The channel opens a new connection for the next call.
                }
                catch (RpcException)
                {
                    return false;
                }
            }

            return false;
        }

        private static async Task WriteAllAsync(IClientStreamWriter<byte[]> writer, byte[] input)
        {
            try
            {
                foreach (var frame in Frames(input))
                {
                    await writer.WriteAsync(frame).ConfigureAwait(false);
                }

                await writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (RpcException)
            {
                // The coordinator ended the call early (it refused a message): its status is read from the response.
            }
            catch (InvalidOperationException)
            {
                // Writing after the call completed: same.
            }
        }
    }
}
