using System.Globalization;
using Federated.Client.Attacks;
using Federated.Client.Hosting;
using Federated.Client.Middleware;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Client.Transfers;
using Federated.Learning.Runtime;
using Federated.Protocol;
using Federated.Protocol.Identity;
using Federated.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using TorchSharp;
using Microsoft.Extensions.Options;

namespace Federated.Client.Agent;

/// <summary>
/// The agent's main loop: initialises libtorch and loads the local data once, then enrols and runs
/// <see cref="AgentSession"/>s, reconnecting with exponential backoff and full jitter (re-enrolling under the same
/// persisted agent id) whenever the transport fails. A refused enrolment (FailedPrecondition, PermissionDenied)
/// stops the host with exit code 2; a coordinator's Shutdown stops it with exit code 0.
/// </summary>
internal sealed class AgentWorker(
    IOptions<ClientOptions> options,
    AgentStateStore store,
    AgentStatusReporter status,
    IColludingChannel colluding,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<AgentWorker> logger,
    IEnumerable<IUpdateMiddleware> middleware,
    IEnumerable<IDataSourceProvider> dataSources) : BackgroundService
{
    private readonly TorchThread _torch = new("federated-agent-torch");

    /// <inheritdoc />
    public override void Dispose()
    {
        base.Dispose();
        _torch.Dispose();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        AgentRuntime runtime;
        try
        {
            runtime = await _torch.RunAsync(Initialize, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            AgentLog.StartFailed(logger, e.Message);
            Stop(2);
            return;
        }

        using (runtime.Identity)
        using (runtime.Training)
        {
            try
            {
                await ConnectLoopAsync(runtime, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Ctrl+C or host shutdown.
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                AgentLog.UnexpectedFailure(logger, e);
                Stop(1);
            }
        }
    }

    private AgentRuntime Initialize()
    {
        var o = options.Value;
        var compute = TorchRuntime.Initialize(new ComputeOptions { Device = o.DeviceKind, Threads = o.Threads });
        var fallback = AutoFallbackReason(o.DeviceKind, compute.IsCuda, TorchRuntime.IsCudaBuild);
        if (fallback is not null)
        {
            AgentLog.DeviceFallback(logger, fallback);
        }

        store.EnsureLayout();
        var state = store.Load();
        var agentId = string.IsNullOrWhiteSpace(o.AgentId) ? state.AgentId : o.AgentId.Trim();
        if (agentId is null)
        {
            agentId = $"agent-{Guid.NewGuid():N}"[..18];
            state = state with { AgentId = agentId };
            store.Save(state);
            AgentLog.AgentIdGenerated(logger, agentId, store.StatePath);
        }
        else if (!string.Equals(state.AgentId, agentId, StringComparison.Ordinal))
        {
            state = state with { AgentId = agentId };
            store.Save(state);
        }
        else
        {
            AgentLog.StateRestored(logger, store.StatePath, agentId, state.LastRound, state.ModelName ?? "(none)");
        }

        AgentLog.Starting(logger, agentId, compute.Description);
        var keyPath = Path.Combine(store.Directory, o.IdentityKeyFile);
        var (identity, created) = IdentityKeyFile.LoadOrCreate(keyPath);
        try
        {
            var publicKey = Convert.ToBase64String(identity.PublicKey);
            AgentLog.Identity(logger, agentId, publicKey, keyPath, created ? "created" : "loaded");
            return Initialize(o, compute, state, agentId, identity, fallback);
        }
        catch
        {
            identity.Dispose();
            throw;
        }
    }

    private AgentRuntime Initialize(ClientOptions o, ComputeContext compute, AgentState state, string agentId, Learning.SecureAggregation.AgentIdentity identity, string? fallback)
    {
        var pending = store.RecoverPending();
        if (pending.Count > 0)
        {
            AgentLog.PendingRecovered(logger, pending.Count, store.PendingDirectory);
        }

        var resources = o.Resources;
        var limits = DescribeLimits(o, torch.get_num_threads());
        AgentLog.ResourceLimits(logger, limits);
        var attack = new AttackStage(o.Attack, agentId);
        if (attack.IsAttacker)
        {
            if (attack.Kind is AttackKind.Alie or AttackKind.Ipm && o.Attack.IsOmniscient && !colluding.IsAvailable)
            {
                throw new InvalidOperationException(
                    $"Client:Attack:Kind={o.Attack.Kind} with Client:Attack:Variant=omniscient needs the honest agents' updates, which only the in-process simulator's colluding channel provides; use Client:Attack:Variant=estimated.");
            }

            AgentLog.AttackConfigured(logger, agentId, o.Attack.Describe());
        }

        var (data, localTest) = LocalDataLoader.LoadWithLocalTest(o.Data, compute.Device, dataSources.LastOrDefault());
        try
        {
            Federated.Learning.Training.Warmup.Run(data);
            if (logger.IsEnabled(LogLevel.Information))
            {
                var histogram = string.Join(' ', data.LabelHistogram());
                AgentLog.DataLoaded(logger, data.Name, data.Count, data.NumClasses, histogram);
            }

            var ci = CultureInfo.InvariantCulture;
            var (continual, replay) = MemoryBudget.ApplyToContinual(resources, o.Continual, data.SampleShape);
            if (replay is { Clamped: true })
            {
                AgentLog.ReplayClamped(logger, replay.Configured, replay.Configured * replay.ExampleBytes, replay.ShareBytes, replay.BudgetBytes, replay.Granted, replay.ReplayBytes);
            }
            else if (replay is not null)
            {
                AgentLog.ReplaySized(logger, replay.Granted, replay.ReplayBytes, replay.ExampleBytes, replay.ShareBytes, replay.BudgetBytes);
            }

            var training = new LocalTrainingService(data, compute, store, state, logger, time, attack, continual, o.Training, localTest);
            var precision = Federated.Learning.Training.TrainingPrecisions.Name(training.Precision);
            AgentLog.TrainingPrecision(logger, precision, training.DeviceName, training.Precision != Federated.Learning.Training.TrainingPrecision.Fp32 && !compute.IsCuda
                ? " (float32 master weights; on a CPU fp16, and bf16 without native bf16 instructions, are slower than fp32: see docs/results/agent.md)"
                : training.Precision != Federated.Learning.Training.TrainingPrecision.Fp32 ? " (float32 master weights)" : "");
            training.Gate = new ResourceGate(resources, store.Directory, time, logger, reason => status.Update(s => reason is null
                ? s with { Phase = "training", PauseReason = null }
                : s with { Phase = "paused", PauseReason = reason }));
            var threads = torch.get_num_threads();
            var capabilities = new Capabilities
            {
                Device = compute.IsCuda ? "cuda" : "cpu",
                NumExamples = data.Count,
                Labels =
                {
                    ["data"] = data.Name,
                    ["partition"] = o.Data.Partition,
                    ["partition_index"] = o.Data.Index.ToString(ci),
                    ["partition_clients"] = o.Data.Clients.ToString(ci),
                    ["threads"] = o.Threads.ToString(ci),
                    ["device_name"] = training.DeviceName,
                    ["precision"] = precision,
                    ["torch_threads"] = threads.ToString(ci),
                    ["backend"] = TorchRuntime.IsCudaBuild ? "cuda" : "cpu",
                },
            };
            foreach (var (key, value) in o.Labels)
            {
                capabilities.Labels[key] = value;
            }

            status.Update(s => s with
            {
                AgentId = agentId,
                Device = training.DeviceName,
                Precision = precision,
                DeviceRequested = o.Device,
                DeviceFallback = fallback,
                Threads = threads,
                Coordinator = o.CoordinatorAddress?.OriginalString,
                Phase = "connecting",
                LastRound = state.LastRound,
                LastResult = state.LastResult,
                PendingUploads = pending.Count,
            });
            return new AgentRuntime(o, agentId, state, store, training, capabilities, _torch, attack, colluding, identity, status, pending) { Middleware = [.. middleware] };
        }
        catch
        {
            data.Dispose();
            localTest?.Dispose();
            throw;
        }
    }

    private async Task ConnectLoopAsync(AgentRuntime runtime, CancellationToken stoppingToken)
    {
        var o = runtime.Options;
        var address = o.CoordinatorAddress!;
        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = ClientTls.Apply(new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(10),
                KeepAlivePingDelay = TimeSpan.FromSeconds(20),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
                EnableMultipleHttp2Connections = true,
            }, o.Tls),
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var backoff = new ReconnectBackoff(o.ReconnectMinSeconds, o.ReconnectMaxSeconds);
        while (true)
        {
            stoppingToken.ThrowIfCancellationRequested();
            string reason;
            var enrolled = false;
            try
            {
                AgentLog.Connecting(logger, address, runtime.AgentId, ProtocolVersion.Current);
                var request = await EnrolRequestAsync(client, runtime, stoppingToken);
                var reply = await client.EnrollAsync(request, deadline: time.GetUtcNow().UtcDateTime.AddSeconds(30), cancellationToken: stoppingToken);
                enrolled = true;
                AdoptAgentId(runtime, reply.AgentId);
                AgentLog.Enrolled(logger, runtime.AgentId, reply.RunId, reply.HeartbeatSeconds, reply.ChunkBytes);
                backoff.Reset();
                using var session = new AgentSession(client, reply, runtime, time, logger);
                runtime.Status.Update(s => s with { Connected = true });
                SessionEnd end;
                try
                {
                    end = await session.RunAsync(stoppingToken);
                }
                finally
                {
                    runtime.Status.Update(s => s with { Connected = false, Phase = "connecting", TaskId = null, Round = 0 });
                }

                if (end == SessionEnd.Shutdown)
                {
                    runtime.Status.Update(s => s with { Phase = "stopped" });
                    Stop(0);
                    return;
                }

                reason = "the coordinator closed the session";
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.PermissionDenied || (e.StatusCode == StatusCode.Unauthenticated && !enrolled))
            {
                // Wrong protocol, a revoked agent, or an enrolment the coordinator does not accept (unknown key, used
                // token, TLS required): retrying cannot help.
                AgentLog.EnrollRefused(logger, e.StatusCode, e.Status.Detail);
                Stop(2);
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested && (e is RpcException || TransportErrors.IsTransient(e, stoppingToken)))
            {
                reason = TransportErrors.Describe(e);
            }

            var delay = backoff.NextDelay();
            AgentLog.Reconnecting(logger, reason, delay.TotalSeconds, backoff.Attempt);
            await Task.Delay(delay, time, stoppingToken);
        }
    }

    /// <summary>
    /// The enrolment: the agent's public key and its signature of a fresh challenge (and the one-time token, if any).
    /// A coordinator that predates challenges (GetChallenge unimplemented) gets a keyless enrolment.
    /// </summary>
    private async Task<EnrollRequest> EnrolRequestAsync(Protocol.V1.Coordinator.CoordinatorClient client, AgentRuntime runtime, CancellationToken cancellationToken)
    {
        var o = runtime.Options;
        var request = new EnrollRequest
        {
            ProtocolVersion = ProtocolVersion.Current,
            AgentId = runtime.AgentId,
            EnrollmentKey = o.EnrollmentKey ?? string.Empty,
            Capabilities = runtime.Capabilities,
        };
        Challenge challenge;
        try
        {
            challenge = await client.GetChallengeAsync(
                new ChallengeRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = runtime.AgentId },
                deadline: time.GetUtcNow().UtcDateTime.AddSeconds(30),
                cancellationToken: cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
        {
            AgentLog.KeylessEnrolment(logger);
            return request;
        }

        var key = runtime.Identity.PublicKey;
        var payload = ChallengeSigning.Payload(ChallengeSigning.EnrolPurpose, challenge.CoordinatorId, runtime.AgentId, challenge.Nonce.Span, challenge.ExpiresUnixMs, key);
        request.PublicKey = ByteString.CopyFrom(key);
        request.ChallengeNonce = challenge.Nonce;
        request.Signature = ByteString.CopyFrom(runtime.Identity.Sign(payload));
        request.EnrolmentToken = o.EnrolmentToken ?? string.Empty;
        return request;
    }

    /// <summary>
    /// Why <c>auto</c> trains on the CPU: no CUDA backend in this build, or no CUDA device visible to libtorch; null when
    /// CUDA was picked or the device was not <c>auto</c>.
    /// </summary>
    internal static string? AutoFallbackReason(DeviceKind requested, bool onCuda, bool cudaBuild)
    {
        if (requested != DeviceKind.Auto || onCuda)
        {
            return null;
        }

        return cudaBuild
            ? "this CUDA build sees no CUDA device: check the driver and CUDA_VISIBLE_DEVICES"
            : "this build uses the CPU libtorch; rebuild with -p:FederatedTorchBackend=cuda for a GPU";
    }

    private static string DescribeLimits(ClientOptions o, int threads)
    {
        var r = o.Resources;
        var ci = CultureInfo.InvariantCulture;
        return string.Join(", ",
            $"threads {threads}",
            r.MemoryBudgetMB > 0 ? $"memory budget {r.MemoryBudgetMB} MiB" : "no memory budget",
            string.IsNullOrWhiteSpace(r.TrainingWindow) ? "any time" : $"training window {r.TrainingWindow}",
            $"duty cycle {r.DutyCycle.ToString("0.##", ci)}",
            $"pause file {Path.GetFullPath(r.PauseFile, Path.GetFullPath(o.StateDirectory))}");
    }

    private void AdoptAgentId(AgentRuntime runtime, string assigned)
    {
        if (string.IsNullOrWhiteSpace(assigned) || string.Equals(assigned, runtime.AgentId, StringComparison.Ordinal))
        {
            return;
        }

        runtime.AgentId = assigned;
        runtime.State = runtime.State with { AgentId = assigned };
        try
        {
            store.Save(runtime.State);
        }
        catch (IOException e)
        {
            AgentLog.PersistFailed(logger, store.Directory, e.Message);
        }
    }

    private void Stop(int exitCode)
    {
        Environment.ExitCode = exitCode;
        lifetime.StopApplication();
    }
}
