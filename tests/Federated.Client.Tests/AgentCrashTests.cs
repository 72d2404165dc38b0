using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Federated.Client.State;
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
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit.Abstractions;

namespace Federated.Client.Tests;

/// <summary>
/// Power loss, as far as a test can make it: the real agent runs as its own process (the built federated-client.dll)
/// against an in-test coordinator and is killed with SIGKILL, once while it trains and once in the middle of an upload.
/// Each time it is started again on the same state directory, and must finish the work with its error-feedback
/// residual and the continual-learning slot intact.
/// </summary>
public sealed class AgentCrashTests(ITestOutputHelper output)
{
    private static readonly TimeSpan _step = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Agent_KilledDuringTrainingAndDuringUpload_FinishesTheRoundWithItsStateIntact()
    {
        using var dir = new TempDirectory();
        var state = Path.Combine(dir.Path, "state");
        var continual = Path.Combine(state, AgentStateStore.ContinualFolderName);
        Directory.CreateDirectory(continual);
        var marker = Path.Combine(continual, "replay-buffer.bin");
        File.WriteAllBytes(marker, Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray());
        var residualPath = Path.Combine(state, AgentStateStore.ResidualFileName);
        var pendingDirectory = Path.Combine(state, AgentStateStore.PendingFolderName);

        using var model = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU, seed: 5);
        var weights = new ModelWeights(model);
        var fake = new ScriptedCoordinator(weights);
        await using var server = await StartAsync(fake);
        var address = server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        // 1. Round 1 completes; round 2 trains for long; SIGKILL while it trains.
        byte[] residualOfRound1;
        var first = AgentProcess.Start(address, state);
        try
        {
            var r1 = await fake.WaitResultAsync("t1", _step);
            Assert.True(r1.Ok, r1.Error);
            residualOfRound1 = File.ReadAllBytes(residualPath);
            await WaitUntilAsync(() => Phase(state) is ("training", 2), _step, "the agent never reported training round 2");
        }
        finally
        {
            await first.KillAsync();
        }

        var residualAfterRound1 = File.ReadAllBytes(residualPath);
        Assert.Equal(residualOfRound1, residualAfterRound1);
        Assert.Empty(Directory.GetDirectories(pendingDirectory));

        // 2. Restarted: round 2 is trained again (a fresh task); SIGKILL in the middle of its upload.
        fake.StallNextUpload = true;
        var second = AgentProcess.Start(address, state);
        try
        {
            await fake.UploadStalled.Task.WaitAsync(_step);
        }
        finally
        {
            await second.KillAsync();
            fake.ReleaseUpload.TrySetResult();
        }

        var pendingFolder = Assert.Single(Directory.GetDirectories(pendingDirectory));
        var sealedResidual = File.ReadAllBytes(Path.Combine(pendingFolder, AgentStateStore.ResidualFileName));
        Assert.NotEqual(residualAfterRound1, sealedResidual);
        Assert.Null(fake.Result("t2b"));

        // 3. Restarted: the interrupted upload is resumed where the coordinator's copy ends, the result follows, no retraining.
        var third = AgentProcess.Start(address, state);
        int exitCode;
        try
        {
            var r2 = await fake.WaitResultAsync("t2b", _step);
            Assert.True(r2.Ok, r2.Error);
            exitCode = await third.WaitForExitAsync(_step);
        }
        finally
        {
            await third.KillAsync();
        }

        output.WriteLine(first.Log);
        output.WriteLine(second.Log);
        output.WriteLine(third.Log);
        Assert.Equal(0, exitCode);
        var upload = fake.CompletedUpload("t2b");
        Assert.True(fake.ResumedAt("t2b") > 0, "the upload restarted from chunk 0 instead of resuming");
        Assert.Equal("2", PayloadCodec.Parse(upload, weights.Layout.Fingerprint).Metadata["round"]);
        Assert.Contains("Device auto: no CUDA", first.Log, StringComparison.Ordinal);
        Assert.Contains("Restored the upload error-feedback residual", second.Log, StringComparison.Ordinal);
        Assert.Contains("Recovered 1 pending upload(s)", third.Log, StringComparison.Ordinal);
        Assert.Contains("Resuming the pending upload", third.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("training round", third.Log, StringComparison.Ordinal);
        Assert.Empty(Directory.GetDirectories(pendingDirectory));
        Assert.Equal(sealedResidual, File.ReadAllBytes(residualPath));
        Assert.Equal(Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray(), File.ReadAllBytes(marker));
        var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(state, AgentStateStore.StateFileName))).RootElement;
        Assert.Equal(AgentState.CurrentVersion, saved.GetProperty("version").GetInt32());
        Assert.Equal(2, saved.GetProperty("lastRound").GetInt32());
        Assert.True(saved.GetProperty("lastResult").GetProperty("delivered").GetBoolean());
        var status = JsonDocument.Parse(File.ReadAllText(Path.Combine(state, AgentStateStore.StatusFileName))).RootElement;
        Assert.Equal(1, status.GetProperty("threads").GetInt32());
        Assert.Equal("cpu", status.GetProperty("device").GetString());
        Assert.Equal("cpu", fake.ReportedDevice);
    }

    private static (string? Phase, int Round) Phase(string state)
    {
        try
        {
            var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(state, AgentStateStore.StatusFileName))).RootElement;
            return (root.GetProperty("phase").GetString(), root.TryGetProperty("round", out var r) ? r.GetInt32() : 0);
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException)
        {
            return (null, 0);
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string failure)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < timeout, failure);
            await Task.Delay(20);
        }
    }

    private static async Task<WebApplication> StartAsync(ScriptedCoordinator fake)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 8 * 1024 * 1024);
        builder.Services.AddSingleton(fake);
        builder.Logging.ClearProviders();
        var server = builder.Build();
        server.MapGrpcService<ScriptedCoordinator>();
        await server.StartAsync();
        return server;
    }

    /// <summary>The built agent (src/Client/bin/&lt;configuration&gt;/net10.0/federated-client.dll) as a child process whose output is kept.</summary>
    private sealed class AgentProcess
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();

        private AgentProcess(Process process) => _process = process;

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public static AgentProcess Start(string address, string state)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(ClientDll());
            foreach (var arg in new[]
            {
                $"--Client:CoordinatorAddress={address}", $"--Client:StateDirectory={state}", "--Client:Device=auto", "--Client:Threads=1",
                "--Client:Data:Source=synthetic", "--Client:Data:SyntheticCount=400", "--Client:Data:Clients=4", "--Client:Data:Index=1",
                "--Client:Data:MaxExamples=100", "--Client:ReconnectMinSeconds=0.05", "--Client:ReconnectMaxSeconds=0.2",
                "--Logging:Console:FormatterName=simple", "--Logging:Console:FormatterOptions:SingleLine=true",
            })
            {
                info.ArgumentList.Add(arg);
            }

            info.Environment["DOTNET_NOLOGO"] = "1";
            var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
            var agent = new AgentProcess(process);
            process.OutputDataReceived += (_, e) => agent.Append(e.Data);
            process.ErrorDataReceived += (_, e) => agent.Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return agent;
        }

        /// <summary>SIGKILL (Process.Kill on Linux), then waits for the exit.</summary>
        public async Task KillAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            await _process.WaitForExitAsync().WaitAsync(_step);
        }

        public async Task<int> WaitForExitAsync(TimeSpan timeout)
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return _process.ExitCode;
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_log)
                {
                    _log.AppendLine(line);
                }
            }
        }

        private static string ClientDll()
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Federated.sln")))
            {
                directory = directory.Parent;
            }

            Assert.NotNull(directory);
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
            var dll = Path.Combine(directory.FullName, "src", "Client", "bin", configuration, "net10.0", "federated-client.dll");
            Assert.True(File.Exists(dll), $"Build the agent first: {dll} is missing.");
            return dll;
        }
    }

    /// <summary>
    /// A coordinator that speaks the real protocol and scripts the rounds: round 1 (t1, one epoch), then round 2 as a
    /// long task (t2, to be killed in training), and after any restart round 2 as a short task (t2b) whose upload it can
    /// stall after the first chunks; once t2b's result is in, it shuts the agent down. Uplinks are top-k with error feedback.
    /// </summary>
    private sealed class ScriptedCoordinator : Protocol.V1.Coordinator.CoordinatorBase
    {
        private readonly SealedPayload _global;
        private readonly string _fingerprint;
        private readonly ConcurrentDictionary<string, TaskResult> _results = new();
        private readonly ConcurrentDictionary<string, ChunkAssembler> _uploads = new();
        private readonly ConcurrentDictionary<string, int> _resumedAt = new();
        private readonly ConcurrentDictionary<string, TaskCompletionSource<TaskResult>> _waiters = new();
        private int _sessions;

        public ScriptedCoordinator(ModelWeights weights)
        {
            var payload = new Payload { LayoutFingerprint = weights.Layout.Fingerprint };
            PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, weights.Flatten());
            _global = new SealedPayload("global", payload, 64 * 1024);
            _fingerprint = weights.Layout.Fingerprint;
        }

        public volatile bool StallNextUpload;

        public TaskCompletionSource UploadStalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ReleaseUpload { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string? ReportedDevice { get; private set; }

        public TaskResult? Result(string taskId) => _results.GetValueOrDefault(taskId);

        public Task<TaskResult> WaitResultAsync(string taskId, TimeSpan timeout) =>
            _waiters.GetOrAdd(taskId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(timeout);

        public byte[] CompletedUpload(string taskId) => _uploads[_results[taskId].UploadTransferId].Bytes;

        public int ResumedAt(string taskId) => _resumedAt.GetValueOrDefault(_results[taskId].UploadTransferId, -1);

        public override Task<EnrollReply> Enroll(EnrollRequest request, ServerCallContext context)
        {
            ReportedDevice = request.Capabilities.Device;
            return Task.FromResult(new EnrollReply { AgentId = request.AgentId, SessionToken = "token", ProtocolVersion = 1, RunId = "run", ChunkBytes = 1024, HeartbeatSeconds = 0.2 });
        }

        public override async Task Session(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<CoordinatorMessage> responseStream, ServerCallContext context)
        {
            var session = Interlocked.Increment(ref _sessions);
            Assert.True(await requestStream.MoveNext(context.CancellationToken));
            await responseStream.WriteAsync(new CoordinatorMessage { Welcome = new Welcome { RunId = "run", CurrentRound = 1 } });
            if (_results.IsEmpty)
            {
                await responseStream.WriteAsync(Train("t1", 1, epochs: 1));
            }
            else if (!_results.ContainsKey("t2b") && !StallNextUpload)
            {
                // A restart after the upload was stalled: the agent delivers its pending upload without a new task.
            }
            else if (!_results.ContainsKey("t2b"))
            {
                await responseStream.WriteAsync(Train("t2b", 2, epochs: 1));
            }

            try
            {
                while (await requestStream.MoveNext(context.CancellationToken))
                {
                    if (requestStream.Current.KindCase != AgentMessage.KindOneofCase.Result)
                    {
                        continue;
                    }

                    var result = requestStream.Current.Result;
                    _results[result.TaskId] = result;
                    _waiters.GetOrAdd(result.TaskId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(result);
                    if (result.TaskId == "t1" && session == 1)
                    {
                        await responseStream.WriteAsync(Train("t2", 2, epochs: 5000));
                    }
                    else if (result.TaskId == "t2b")
                    {
                        await responseStream.WriteAsync(new CoordinatorMessage { Shutdown = new Shutdown { Reason = "done" } });
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or RpcException)
            {
                // The agent was killed.
            }
        }

        public override async Task Download(DownloadRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
        {
            for (var sequence = request.StartSequence; sequence < _global.ChunkCount; sequence++)
            {
                await responseStream.WriteAsync(_global.GetChunk(sequence));
            }
        }

        public override async Task<UploadReply> Upload(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context)
        {
            ChunkAssembler? assembler = null;
            var received = 0;
            try
            {
                while (await requestStream.MoveNext(context.CancellationToken))
                {
                    var chunk = requestStream.Current;
                    if (chunk.Header is { } header)
                    {
                        assembler = _uploads.GetOrAdd(chunk.TransferId, id => new ChunkAssembler(id, header.TotalBytes, header.ChunkCount, header.Sha256.Span, 1 << 30));
                        if (chunk.Sequence > 0)
                        {
                            _resumedAt[chunk.TransferId] = chunk.Sequence;
                        }
                    }

                    assembler!.Accept(chunk);
                    if (++received == 3 && StallNextUpload && IsStalledTask(chunk.TransferId))
                    {
                        StallNextUpload = false;
                        UploadStalled.TrySetResult();
                        await ReleaseUpload.Task;
                        throw new RpcException(new Status(StatusCode.Unavailable, "the agent went away"));
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "the agent went away"));
            }

            return new UploadReply { TransferId = assembler!.TransferId, Complete = assembler.IsComplete, NextSequence = assembler.NextSequence };
        }

        public override Task<UploadStateReply> GetUploadState(UploadStateRequest request, ServerCallContext context) =>
            Task.FromResult(_uploads.TryGetValue(request.TransferId, out var a)
                ? new UploadStateReply { TransferId = request.TransferId, Known = true, Complete = a.IsComplete, NextSequence = a.NextSequence }
                : new UploadStateReply { TransferId = request.TransferId });

        private static bool IsStalledTask(string transferId) => transferId.EndsWith("-t2b", StringComparison.Ordinal);

        private CoordinatorMessage Train(string taskId, int round, int epochs) => new()
        {
            Train = new TrainTask
            {
                TaskId = taskId,
                Round = round,
                Model = _global.ToRef(),
                ModelName = "mlp",
                LayoutFingerprint = _fingerprint,
                Training = new TrainingConfig { Epochs = epochs, BatchSize = 10, Optimizer = "sgd", LearningRate = 0.05, Seed = round },
                Config = { [CompressionKeys.UplinkCodec] = "topk:ratio=0.05", [CompressionKeys.ErrorFeedback] = "true" },
            },
        };
    }
}
