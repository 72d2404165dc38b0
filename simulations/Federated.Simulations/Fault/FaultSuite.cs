using System.Diagnostics;
using System.Globalization;
using System.Text;
using Federated.Simulations.Launch;

namespace Federated.Simulations.Fault;

/// <summary>Settings of the <c>faults</c> command.</summary>
internal sealed record FaultSuiteSettings(IReadOnlyList<string> Kinds, int Runs, int Rounds, int Agents, long Seed, string OutputDirectory);

/// <summary>What one run of one fault ended with (see <see cref="FaultLedger"/> for how each count is read off the logs).</summary>
internal sealed record FaultRunOutcome(
    string Kind,
    int Run,
    int PlannedRounds,
    int CompletedRounds,
    int FailedRounds,
    int Delivered,
    int Aggregated,
    int Late,
    int HostileRefused,
    int HostileRejected,
    int HostileAccepted,
    int RecollectedAfterCrash,
    int Undelivered,
    int Lost,
    int Injected,
    string Notes)
{
    /// <summary>The run finished every round, lost nothing it had accepted and let no hostile update in.</summary>
    public bool Passed => CompletedRounds == PlannedRounds && Lost == 0 && HostileAccepted == 0;
}

/// <summary>
/// The fault suite: for each fault, N runs of a small federation (the real coordinator and the real agents as separate
/// processes, each agent behind its own <see cref="LoopbackProxy"/>) with the fault injected, and a table of what each
/// run completed and lost. The faults: agents killed with SIGKILL in the middle of an upload and restarted; every link
/// cut and refused for a while, again and again; the coordinator killed with SIGKILL mid-round and restarted; agents
/// 40× slower than the round's deadline allows; and a hostile agent sending NaN/Inf updates, updates of the wrong
/// layout, oversized chunks and headers, garbage bytes, or chunks out of order.
/// </summary>
internal sealed class FaultSuite(FaultSuiteSettings settings, TextWriter console)
{
    /// <summary>Every fault, in the order the table lists them.</summary>
    public static readonly string[] AllKinds =
    [
        "agent-kill-upload", "proxy-cuts", "coordinator-restart", "slow-agents", "nan-inf", "wrong-layout", "oversized", "garbage", "out-of-order",
    ];

    private const string HostileId = "hostile-0000";

    private static string Inv(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>Runs every fault <see cref="FaultSuiteSettings.Runs"/> times; returns 0 when every run passed.</summary>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var coordinatorDll = ChildProcesses.ShippedDll("Coordinator", "federated-coordinator.dll");
        var clientDll = ChildProcesses.ShippedDll("Client", "federated-client.dll");
        ChildProcesses.ResetDirectory(settings.OutputDirectory);
        var clock = Stopwatch.StartNew();
        var outcomes = new List<FaultRunOutcome>();
        foreach (var kind in settings.Kinds)
        {
            for (var run = 1; run <= settings.Runs; run++)
            {
                var directory = Path.Combine(settings.OutputDirectory, Inv($"{kind}-{run:D2}"));
                var started = Stopwatch.StartNew();
                var outcome = await RunOnceAsync(coordinatorDll, clientDll, kind, run, directory, cancellationToken).ConfigureAwait(false);
                outcomes.Add(outcome);
                console.WriteLine(Inv($"faults: {kind} run {run}: {outcome.CompletedRounds}/{outcome.PlannedRounds} rounds, {outcome.Delivered} honest updates delivered, {outcome.Aggregated} aggregated, {outcome.Late} late, lost {outcome.Lost}, hostile accepted {outcome.HostileAccepted}; {outcome.Notes} ({started.Elapsed.TotalSeconds:F1} s) {(outcome.Passed ? "ok" : "FAILED")}"));
            }
        }

        var text = Table(outcomes, clock.Elapsed);
        await File.WriteAllTextAsync(Path.Combine(settings.OutputDirectory, "faults.md"), text, cancellationToken).ConfigureAwait(false);
        console.WriteLine();
        console.WriteLine(text);
        return outcomes.All(o => o.Passed) ? 0 : 1;
    }

    private string Table(List<FaultRunOutcome> outcomes, TimeSpan elapsed)
    {
        var text = new StringBuilder();
        text.AppendLine("| fault | runs | faults injected | rounds completed (failed cleanly) | honest updates delivered | aggregated | late (counted, dropped) | hostile uploads refused / results rejected | hostile accepted | accepted, then re-collected after a crash | delivered, never seen by the coordinator | updates lost | runs passed |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var group in outcomes.GroupBy(o => o.Kind))
        {
            var g = group.ToList();
            text.AppendLine(Inv($"| {group.Key} | {g.Count} | {g.Sum(o => o.Injected)} | {g.Sum(o => o.CompletedRounds)}/{g.Sum(o => o.PlannedRounds)} ({g.Sum(o => o.FailedRounds)}) | {g.Sum(o => o.Delivered)} | {g.Sum(o => o.Aggregated)} | {g.Sum(o => o.Late)} | {g.Sum(o => o.HostileRefused)} / {g.Sum(o => o.HostileRejected)} | {g.Sum(o => o.HostileAccepted)} | {g.Sum(o => o.RecollectedAfterCrash)} | {g.Sum(o => o.Undelivered)} | **{g.Sum(o => o.Lost)}** | {g.Count(o => o.Passed)}/{g.Count} |"));
        }

        text.AppendLine();
        text.AppendLine(Inv($"{outcomes.Count(o => o.Passed)} of {outcomes.Count} runs passed (every round completed, no accepted update lost, no hostile update accepted); {settings.Agents} honest agents, {settings.Rounds} rounds a run, seed {settings.Seed}; {elapsed.TotalMinutes:F1} min in all."));
        text.AppendLine();
        text.AppendLine("Per run:");
        text.AppendLine();
        foreach (var o in outcomes)
        {
            text.AppendLine(Inv($"- {o.Kind} {o.Run}: {o.Notes}"));
        }

        return text.ToString();
    }

    private async Task<FaultRunOutcome> RunOnceAsync(string coordinatorDll, string clientDll, string kind, int run, string directory, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        var random = new Random(HashCode.Combine(settings.Seed, kind, run));
        var port = ChildProcesses.FreePort();
        var address = Inv($"http://127.0.0.1:{port}");
        var hostility = kind switch
        {
            "nan-inf" => Hostility.NaNInf,
            "wrong-layout" => Hostility.WrongLayout,
            "oversized" => Hostility.Oversized,
            "garbage" => Hostility.Garbage,
            "out-of-order" => Hostility.OutOfOrder,
            _ => (Hostility?)null,
        };
        var scenario = new Scenarios.Scenario
        {
            Name = "faults",
            Clients = settings.Agents,
            MinResults = 1,
            Rounds = settings.Rounds,
            Model = "mlp",
            Strategy = new Scenarios.StrategySection { Name = "fedavg" },
            Training = new Scenarios.TrainingSection { Epochs = 2, BatchSize = 32, Optimizer = "sgd", LearningRate = 0.05 },
            Data = new Scenarios.DataSection { Source = "synthetic", Partition = "iid", Normalization = "none", SyntheticCount = 1000 * settings.Agents, SyntheticClasses = 4 },
            RoundDeadlineSeconds = kind == "slow-agents" ? 8 : 60,
            Seed = settings.Seed + run,
            AgentThreads = 1,
            Mode = "multi-process",
        };
        var state = Path.Combine(directory, "coordinator");
        var coordinatorSettings = Scenarios.FederationPlan.Coordinator(scenario, state);
        coordinatorSettings["Coordinator:Resume"] = "true";
        coordinatorSettings["Coordinator:HeartbeatSeconds"] = "1";
        coordinatorSettings["Coordinator:AgentTimeoutSeconds"] = "10";
        coordinatorSettings["Coordinator:Prometheus:Enabled"] = "false";
        coordinatorSettings["Coordinator:MinAvailable"] = Inv($"{settings.Agents + (hostility is null ? 0 : 1)}");
        coordinatorSettings["Logging:LogLevel:Federated.Coordinator.Rounds.RoundRunner"] = "Debug";
        string[] coordinatorArguments = ["--urls", address, .. coordinatorSettings.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })];
        var coordinatorLog = Path.Combine(directory, "coordinator.log");

        var proxies = new List<LoopbackProxy>();
        var agents = new Process?[settings.Agents];
        var agentArguments = new string[settings.Agents][];
        var retired = new List<Process>();
        Process? coordinator = null;
        var injected = 0;
        var notes = new List<string>();
        HostileAgent? hostile = null;
        Task hostileRun = Task.CompletedTask;
        using var stopFaults = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task faults = Task.CompletedTask;
        try
        {
            coordinator = ChildProcesses.StartDotnet(coordinatorDll, coordinatorArguments, coordinatorLog);
            await ChildProcesses.WaitForCoordinatorAsync(address, coordinator, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < settings.Agents; i++)
            {
                var proxy = new LoopbackProxy(port);
                proxies.Add(proxy);
                var agent = Scenarios.FederationPlan.Agent(scenario, i, proxy.Address, Path.Combine(directory, Inv($"agent-{i:D4}")));
                agent["Client:ReconnectMinSeconds"] = "0.2";
                agent["Client:ReconnectMaxSeconds"] = "1";
                if (kind == "slow-agents" && i < Math.Max(1, settings.Agents / 2))
                {
                    agent["Client:Simulation:Slowdown"] = "40";
                }

                agentArguments[i] = [.. agent.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })];
                agents[i] = ChildProcesses.StartDotnet(clientDll, agentArguments[i], AgentLog(directory, i));
            }

            if (hostility is { } h)
            {
                hostile = new HostileAgent(address, HostileId, h);
                hostileRun = hostile.RunAsync(4 * 1024 * 1024, stopFaults.Token);
            }

            faults = kind switch
            {
                "agent-kill-upload" => KillAgentsMidUploadAsync(),
                "proxy-cuts" => CutLinksAsync(),
                "coordinator-restart" => RestartCoordinatorAsync(),
                _ => Task.CompletedTask,
            };

            // The coordinator exits once its rounds are done (restarts swap the process: wait for the current one).
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromMinutes(10));
            while (true)
            {
                var current = coordinator;
                await current.WaitForExitAsync(limit.Token).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(200), TimeProvider.System, limit.Token).ConfigureAwait(false);
                if (ReferenceEquals(current, coordinator) && faults.IsCompleted)
                {
                    break;
                }

                if (ReferenceEquals(current, coordinator))
                {
                    await faults.WaitAsync(limit.Token).ConfigureAwait(false);
                }
            }

            await stopFaults.CancelAsync().ConfigureAwait(false);
            await faults.ConfigureAwait(false);
            if (coordinator.ExitCode != 0)
            {
                notes.Add(Inv($"the coordinator exited with code {coordinator.ExitCode}"));
            }

            await WaitQuietlyAsync(hostileRun).ConfigureAwait(false);
            foreach (var agent in agents.Where(a => a is not null))
            {
                using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                grace.CancelAfter(TimeSpan.FromSeconds(20));
                try
                {
                    await agent!.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                }
            }
        }
        finally
        {
            await stopFaults.CancelAsync().ConfigureAwait(false);
            foreach (var process in agents.Append(coordinator).Concat(retired).OfType<Process>())
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                process.Dispose();
            }

            foreach (var proxy in proxies)
            {
                await proxy.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (hostile is not null)
        {
            await File.WriteAllLinesAsync(Path.Combine(directory, "hostile.log"), hostile.Outcomes, cancellationToken).ConfigureAwait(false);
            injected += hostile.Tasks;
            if (hostility == Hostility.OutOfOrder)
            {
                notes.Add(Inv($"after each refused out-of-order chunk the coordinator still held the chunks before it: {hostile.ChunksKeptAfterRefusal} of {hostile.Tasks}"));
            }
        }

        if (kind == "agent-kill-upload")
        {
            var recovered = Enumerable.Range(0, settings.Agents).Sum(i => FaultLedger.Events(AgentLog(directory, i)).SkipWhile(e => e.EventId != -1).Count(e => e.EventId == 2207));
            notes.Add(Inv($"{recovered} of {injected} killed agents found their sealed update pending on restart and delivered it"));
        }

        if (kind == "proxy-cuts")
        {
            notes.Add(Inv($"{proxies.Sum(p => p.Cuts)} connections reset, {proxies.Sum(p => p.Refused)} reconnections refused while links were down"));
        }

        var ledger = FaultLedger.Read(directory, settings.Agents, HostileId);
        notes.Insert(0, ledger.Describe());
        return new FaultRunOutcome(
            kind, run, settings.Rounds, ledger.CommittedRounds, ledger.FailedRounds, ledger.Delivered, ledger.Aggregated, ledger.Late,
            hostile?.UploadsRefused ?? 0, ledger.HostileRejected, ledger.HostileAccepted, ledger.RecollectedAfterCrash, ledger.Undelivered, ledger.Lost,
            hostile is null ? injected : hostile.Tasks, string.Join("; ", notes));

        // Agent 0 (then 1, …) is killed with SIGKILL once a third of its upload has passed its proxy (throttled to
        // 512 KiB/s so that an upload lasts long enough to be cut), in two rounds of the run, and restarted a second later.
        async Task KillAgentsMidUploadAsync()
        {
            int[] rounds = [random.Next(1, Math.Max(2, settings.Rounds / 2 + 1)), random.Next(settings.Rounds / 2 + 1, settings.Rounds + 1)];
            var token = stopFaults.Token;
            for (var k = 0; k < rounds.Length; k++)
            {
                var victim = k % settings.Agents;
                if (await FaultRunner.WaitForRoundAsync(address, coordinator!, rounds[k], token).ConfigureAwait(false) <= 0)
                {
                    return;
                }

                var proxy = proxies[victim];
                var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                proxy.UpstreamBytesPerSecond = 512 * 1024;
                proxy.OnUpstream = burst =>
                {
                    if (burst >= 250_000)
                    {
                        halfway.TrySetResult();
                    }
                };
                try
                {
                    await Task.WhenAny(halfway.Task, coordinator!.WaitForExitAsync(token), Task.Delay(TimeSpan.FromSeconds(60), TimeProvider.System, token)).ConfigureAwait(false);
                }
                finally
                {
                    proxy.OnUpstream = null;
                    proxy.UpstreamBytesPerSecond = 0;
                }

                if (!halfway.Task.IsCompleted)
                {
                    notes.Add(Inv($"no upload of agent {victim} seen in round {rounds[k]}"));
                    continue;
                }

                agents[victim]!.Kill(); // SIGKILL at once (the agent has no child processes to look for)
                await agents[victim]!.WaitForExitAsync(token).ConfigureAwait(false);
                injected++;
                retired.Add(agents[victim]!);
                File.AppendAllText(AgentLog(directory, victim), Inv($"{FaultLedger.CrashMarker} SIGKILL mid-upload in round {rounds[k]} ==={Environment.NewLine}"));
                await Task.Delay(TimeSpan.FromSeconds(1), TimeProvider.System, token).ConfigureAwait(false);
                agents[victim] = ChildProcesses.StartDotnet(clientDll, agentArguments[victim], AgentLog(directory, victim), append: true);
            }
        }

        // Every link is cut (reset) every 2 to 6 s and refuses new connections for 0.3 to 1.5 s, until the run ends.
        async Task CutLinksAsync()
        {
            var token = stopFaults.Token;
            try
            {
                await ChildProcesses.WaitForCoordinatorAsync(address, coordinator!, token).ConfigureAwait(false);
                while (!token.IsCancellationRequested && !coordinator!.HasExited)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2 + (4 * random.NextDouble())), TimeProvider.System, token).ConfigureAwait(false);
                    foreach (var proxy in proxies)
                    {
                        proxy.Refusing = true;
                        proxy.CutAll();
                    }

                    injected++;
                    await Task.Delay(TimeSpan.FromSeconds(0.3 + (1.2 * random.NextDouble())), TimeProvider.System, token).ConfigureAwait(false);
                    foreach (var proxy in proxies)
                    {
                        proxy.Refusing = false;
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
            finally
            {
                foreach (var proxy in proxies)
                {
                    proxy.Refusing = false;
                }
            }
        }

        // The coordinator is killed with SIGKILL 0 to 1.5 s into a random round and restarted on the same state.
        async Task RestartCoordinatorAsync()
        {
            var token = stopFaults.Token;
            var round = random.Next(1, settings.Rounds + 1);
            if (await FaultRunner.WaitForRoundAsync(address, coordinator!, round, token).ConfigureAwait(false) is not (> 0 and var inRound))
            {
                return;
            }

            var delay = 1.5 * random.NextDouble();
            await Task.Delay(TimeSpan.FromSeconds(delay), TimeProvider.System, token).ConfigureAwait(false);
            if (coordinator!.HasExited)
            {
                return;
            }

            coordinator.Kill();
            await coordinator.WaitForExitAsync(token).ConfigureAwait(false);
            injected++;
            retired.Add(coordinator);
            File.AppendAllText(coordinatorLog, Inv($"{FaultLedger.CrashMarker} SIGKILL in round {inRound} after {delay:F2} s ==={Environment.NewLine}"));
            coordinator = ChildProcesses.StartDotnet(coordinatorDll, coordinatorArguments, coordinatorLog, append: true);
        }
    }

    private static string AgentLog(string directory, int index) => Path.Combine(directory, Inv($"agent-{index:D4}.log"));

    private static async Task WaitQuietlyAsync(Task task)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or Grpc.Core.RpcException or IOException or InvalidOperationException)
        {
        }
    }
}
