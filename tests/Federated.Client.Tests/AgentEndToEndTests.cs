using System.Collections.Concurrent;
using Federated.Client.Hosting;
using Federated.Learning.Models;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Federated.Client.Tests;

/// <summary>Runs the real agent host against an in-process fake coordinator that breaks one download and one upload.</summary>
public sealed class AgentEndToEndTests
{
    [Fact]
    public async Task Agent_EnrolsTrainsUploadsWithResume_AndStopsOnShutdown()
    {
        using var dir = new TempDirectory();
        using var model = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU, seed: 3);
        var weights = new ModelWeights(model);
        var payload = new Payload { LayoutFingerprint = weights.Layout.Fingerprint };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, weights.Flatten());
        var fake = new FakeCoordinator(new SealedPayload("global-1", payload, 64 * 1024), weights.Layout.Fingerprint);

        var serverBuilder = WebApplication.CreateSlimBuilder();
        serverBuilder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        serverBuilder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 8 * 1024 * 1024);
        serverBuilder.Services.AddSingleton(fake);
        serverBuilder.Logging.ClearProviders();
        await using var server = serverBuilder.Build();
        server.MapGrpcService<FakeCoordinator>();
        await server.StartAsync();
        var address = server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var agentBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args =
            [
                $"--Client:CoordinatorAddress={address}", $"--Client:StateDirectory={dir.Path}", "--Client:Device=cpu",
                "--Client:Data:Source=synthetic", "--Client:Data:SyntheticCount=400", "--Client:Data:Clients=4", "--Client:Data:Index=2",
                "--Client:Data:MaxExamples=50", "--Client:ReconnectMinSeconds=0.05", "--Client:ReconnectMaxSeconds=0.2",
            ],
            DisableDefaults = false,
        });
        agentBuilder.Logging.ClearProviders();
        agentBuilder.Services.AddFederatedClient(agentBuilder.Configuration);
        using var agent = agentBuilder.Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await agent.RunAsync(timeout.Token);
        Assert.False(timeout.IsCancellationRequested, "The agent did not stop on the coordinator's Shutdown.");

        var result = Assert.Single(fake.Results);
        Assert.True(result.Ok, result.Error);
        Assert.Equal("t1", result.TaskId);
        Assert.Equal(7, result.Round);
        Assert.Equal(50, result.NumExamples);
        Assert.True(result.LocalSteps > 0);
        Assert.Contains("train_loss", result.Metrics.Keys);
        Assert.Contains("upload_seconds", result.Metrics.Keys);
        Assert.True(fake.DownloadCalls >= 2, "The broken download was not resumed.");
        Assert.True(fake.UploadCalls >= 2, "The broken upload was not resumed.");
        var upload = fake.Uploads[result.UploadTransferId];
        var update = PayloadCodec.Parse(upload.Bytes, weights.Layout.Fingerprint);
        Assert.Equal(weights.Layout.TotalLength, PayloadCodec.ReadDense(update, PayloadCodec.ModelTensor).Length);
        Assert.StartsWith(fake.EnrolledIds.First(), result.UploadTransferId, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir.Path, "state.json")));
        await server.StopAsync();
    }

    private sealed class FakeCoordinator(SealedPayload global, string fingerprint) : Protocol.V1.Coordinator.CoordinatorBase
    {
        private int _downloadCalls;
        private int _uploadCalls;

        public ConcurrentQueue<TaskResult> Results { get; } = new();

        public ConcurrentDictionary<string, ChunkAssembler> Uploads { get; } = new();

        public ConcurrentQueue<string> EnrolledIds { get; } = new();

        public int DownloadCalls => _downloadCalls;

        public int UploadCalls => _uploadCalls;

        public override Task<EnrollReply> Enroll(EnrollRequest request, ServerCallContext context)
        {
            EnrolledIds.Enqueue(request.AgentId);
            return Task.FromResult(new EnrollReply { AgentId = request.AgentId, SessionToken = "token-1", ProtocolVersion = 1, RunId = "run", ChunkBytes = 16 * 1024, HeartbeatSeconds = 0.1 });
        }

        public override async Task Session(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<CoordinatorMessage> responseStream, ServerCallContext context)
        {
            CheckToken(context);
            Assert.True(await requestStream.MoveNext(context.CancellationToken));
            Assert.Equal(AgentMessage.KindOneofCase.Hello, requestStream.Current.KindCase);
            await responseStream.WriteAsync(new CoordinatorMessage { Welcome = new Welcome { RunId = "run", CurrentRound = 7 } });
            await responseStream.WriteAsync(new CoordinatorMessage
            {
                Train = new TrainTask
                {
                    TaskId = "t1",
                    Round = 7,
                    Model = global.ToRef(),
                    ModelName = "mlp",
                    LayoutFingerprint = fingerprint,
                    Training = new TrainingConfig { Epochs = 1, BatchSize = 10, Optimizer = "sgd", LearningRate = 0.05 },
                },
            });
            while (await requestStream.MoveNext(context.CancellationToken))
            {
                if (requestStream.Current.KindCase == AgentMessage.KindOneofCase.Result)
                {
                    Results.Enqueue(requestStream.Current.Result);
                    await responseStream.WriteAsync(new CoordinatorMessage { Shutdown = new Shutdown { Reason = "done" } });
                }
            }
        }

        public override async Task Download(DownloadRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
        {
            CheckToken(context);
            var call = Interlocked.Increment(ref _downloadCalls);
            for (var sequence = request.StartSequence; sequence < global.ChunkCount; sequence++)
            {
                if (call == 1 && sequence == 2)
                {
                    throw new RpcException(new Status(StatusCode.Unavailable, "simulated break"));
                }

                await responseStream.WriteAsync(global.GetChunk(sequence));
            }
        }

        public override async Task<UploadReply> Upload(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context)
        {
            CheckToken(context);
            var call = Interlocked.Increment(ref _uploadCalls);
            ChunkAssembler? assembler = null;
            var received = 0;
            while (await requestStream.MoveNext(context.CancellationToken))
            {
                var chunk = requestStream.Current;
                if (chunk.Header is { } header)
                {
                    assembler = Uploads.GetOrAdd(chunk.TransferId, id => new ChunkAssembler(id, header.TotalBytes, header.ChunkCount, header.Sha256.Span, 1 << 30));
                }

                Assert.NotNull(assembler);
                if (call == 1 && ++received == 3)
                {
                    throw new RpcException(new Status(StatusCode.Unavailable, "simulated break"));
                }

                assembler.Accept(chunk);
            }

            return new UploadReply { TransferId = assembler!.TransferId, Complete = assembler.IsComplete, NextSequence = assembler.NextSequence };
        }

        public override Task<UploadStateReply> GetUploadState(UploadStateRequest request, ServerCallContext context)
        {
            CheckToken(context);
            return Task.FromResult(Uploads.TryGetValue(request.TransferId, out var a)
                ? new UploadStateReply { TransferId = request.TransferId, Known = true, Complete = a.IsComplete, NextSequence = a.NextSequence }
                : new UploadStateReply { TransferId = request.TransferId });
        }

        private static void CheckToken(ServerCallContext context)
        {
            if (context.RequestHeaders.GetValue("authorization") != "Bearer token-1")
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "no token"));
            }
        }
    }
}
