using Federated.Protocol;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>The wire contract's edges against a real coordinator: versions, auth, chunked transfers.</summary>
public sealed class ProtocolTests : IAsyncLifetime
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-protocol-").FullName;
    private TestCoordinator? _coordinator;

    private TestCoordinator Coordinator => _coordinator!;

    public async Task InitializeAsync()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:MinAvailable"] = "50"; // no round starts: these tests exercise the transport only
        settings["Coordinator:MaxPayloadBytes"] = (64L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture);
        _coordinator = await TestCoordinator.StartAsync(settings);
    }

    public async Task DisposeAsync()
    {
        await Coordinator.DisposeAsync();
        Directory.Delete(_state, recursive: true);
    }

    private static SealedPayload RandomPayload(int floats, int chunkBytes, int seed)
    {
        var random = new Random(seed);
        var values = new float[floats];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = random.NextSingle();
        }

        var payload = new Payload { LayoutFingerprint = "test" };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, values);
        return new SealedPayload($"upload-{seed}", payload, chunkBytes);
    }

    [Fact]
    public async Task Enroll_UnknownProtocolVersion_FailsWithFailedPreconditionAndServiceGoesOn()
    {
        using var channel = GrpcChannel.ForAddress(Coordinator.Address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);

        var error = await Assert.ThrowsAsync<RpcException>(() => client.EnrollAsync(new EnrollRequest { ProtocolVersion = 99, AgentId = "old" }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("version 99", error.Status.Detail, StringComparison.Ordinal);
        var status = await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current });
        Assert.Equal(ProtocolVersion.Current, status.ProtocolVersion);
    }

    [Fact]
    public async Task Session_HelloWithUnknownVersion_FailsWithFailedPrecondition()
    {
        await using var agent = await ScriptedAgent.EnrollAsync(Coordinator.Address, "v");
        using var call = agent.Client.Session(agent.Auth);

        await call.RequestStream.WriteAsync(new AgentMessage { Hello = new Hello { AgentId = "v", ProtocolVersion = 2 } });
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    [Fact]
    public async Task Download_WithoutToken_IsUnauthenticated()
    {
        using var channel = GrpcChannel.ForAddress(Coordinator.Address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        using var call = client.Download(new DownloadRequest { TransferId = "x" });

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Fact]
    public async Task Upload_PayloadLargerThan16MiB_ArrivesInChunksAndVerifies()
    {
        await using var agent = await ScriptedAgent.EnrollAsync(Coordinator.Address, "big");
        var payload = RandomPayload(5 * 1024 * 1024, 1024 * 1024, seed: 1); // 20 MiB of floats

        var reply = await agent.UploadAsync(payload, "t1", 1, 0, payload.ChunkCount);

        Assert.True(payload.Bytes.Length > 16 * 1024 * 1024);
        Assert.True(payload.ChunkCount >= 20);
        Assert.True(reply.Complete);
        var state = await agent.Client.GetUploadStateAsync(new UploadStateRequest { TransferId = payload.TransferId }, agent.Auth);
        Assert.True(state.Complete);
    }

    [Fact]
    public async Task Upload_CutHalfway_ResumesFromTheLastChunk()
    {
        await using var agent = await ScriptedAgent.EnrollAsync(Coordinator.Address, "cut");
        var payload = RandomPayload(1024 * 1024, 256 * 1024, seed: 2); // 4 MiB (+ framing) in 17 chunks

        // The first stream dies after 8 chunks.
        using (var cut = new CancellationTokenSource())
        {
            using var call = agent.Client.Upload(agent.Auth, cancellationToken: cut.Token);
            for (var sequence = 0; sequence < 8; sequence++)
            {
                var chunk = payload.GetChunk(sequence);
                if (sequence == 0)
                {
                    chunk.Header = payload.ToUploadHeader("t2", 1);
                }

                await call.RequestStream.WriteAsync(chunk);
            }

            await TestCoordinator.WaitUntilAsync(
                () => agent.Client.GetUploadState(new UploadStateRequest { TransferId = payload.TransferId }, agent.Auth).NextSequence == 8,
                TimeSpan.FromSeconds(20), "8 chunks received");
            await cut.CancelAsync();
        }

        var resumeFrom = (await agent.Client.GetUploadStateAsync(new UploadStateRequest { TransferId = payload.TransferId }, agent.Auth)).NextSequence;
        var reply = await agent.UploadAsync(payload, "t2", 1, resumeFrom, payload.ChunkCount);

        Assert.Equal(8, resumeFrom);
        Assert.True(reply.Complete);
        Assert.Equal(payload.ChunkCount, reply.NextSequence);
    }

    [Fact]
    public async Task Upload_CorruptedChunk_IsRejectedWithDataLossAndCanBeResent()
    {
        await using var agent = await ScriptedAgent.EnrollAsync(Coordinator.Address, "crc");
        var payload = RandomPayload(256 * 1024, 128 * 1024, seed: 3); // 1 MiB in 8 chunks

        var error = await Assert.ThrowsAsync<RpcException>(() => agent.UploadAsync(payload, "t3", 1, 0, payload.ChunkCount, chunk =>
        {
            if (chunk.Sequence != 2)
            {
                return chunk;
            }

            var bytes = chunk.Data.ToByteArray();
            bytes[100] ^= 0xFF;
            return new Chunk { TransferId = chunk.TransferId, Sequence = chunk.Sequence, Data = ByteString.CopyFrom(bytes), Crc32C = chunk.Crc32C };
        }));

        Assert.Equal(StatusCode.DataLoss, error.StatusCode);
        Assert.Contains("CRC-32C", error.Status.Detail, StringComparison.Ordinal);
        var state = await agent.Client.GetUploadStateAsync(new UploadStateRequest { TransferId = payload.TransferId }, agent.Auth);
        Assert.Equal(2, state.NextSequence);
        var reply = await agent.UploadAsync(payload, "t3", 1, state.NextSequence, payload.ChunkCount);
        Assert.True(reply.Complete);
    }

    [Fact]
    public async Task Upload_HeaderLargerThanTheLimit_IsResourceExhausted()
    {
        await using var agent = await ScriptedAgent.EnrollAsync(Coordinator.Address, "huge");
        using var call = agent.Client.Upload(agent.Auth);
        await call.RequestStream.WriteAsync(new Chunk
        {
            TransferId = "huge-1",
            Data = ByteString.Empty,
            Header = new UploadHeader { TotalBytes = 1L << 40, ChunkCount = 1 << 20, Sha256 = ByteString.CopyFrom(new byte[32]) },
        });
        await call.RequestStream.CompleteAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
    }
}
