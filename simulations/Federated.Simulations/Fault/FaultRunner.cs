using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Federated.Protocol;
using Federated.Protocol.V1;
using Federated.Simulations.Launch;
using Grpc.Net.Client;

namespace Federated.Simulations.Fault;

/// <summary>Runs the fault test of <see cref="FaultCommand"/>.</summary>
internal sealed class FaultRunner(FaultSettings settings, TextWriter console)
{
    private static string Inv(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>What one run ended with.</summary>
    private sealed record Outcome(int CompletedRounds, int CsvRows, int StoreRows, IReadOnlyList<string> EpsilonColumn, string FinalEpsilon, string RoundColumn);

    /// <summary>A kill: when it happened and what the store held right after it.</summary>
    private sealed record Kill(int Round, double DelaySeconds, int CommittedAtKill);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var coordinatorDll = ChildProcesses.ShippedDll("Coordinator", "federated-coordinator.dll");
        var clientDll = ChildProcesses.ShippedDll("Client", "federated-client.dll");

        ChildProcesses.ResetDirectory(settings.OutputDirectory);
        var clock = Stopwatch.StartNew();
        console.WriteLine(Inv($"fault: reference run ({settings.Agents} agents, {settings.Rounds} rounds, DP on, store {settings.Store})"));
        var (reference, _, referenceSeconds) = await RunOnceAsync(coordinatorDll, clientDll, Path.Combine(settings.OutputDirectory, "reference"), kill: null, cancellationToken).ConfigureAwait(false);
        var roundSeconds = MeanRoundSeconds(Path.Combine(settings.OutputDirectory, "reference", "coordinator", "rounds.csv"));
        console.WriteLine(Inv($"fault: reference: {reference.CompletedRounds} rounds, {reference.CsvRows} csv rows, {reference.StoreRows} store rows, ε = {reference.FinalEpsilon} ({referenceSeconds:F1} s; rounds of {roundSeconds:F2} s on average: kills come 0 to that many seconds into the round)"));

        var table = new StringBuilder();
        table.AppendLine("| run | killed in round | after (s) | rounds committed at the kill | completed rounds | rounds.csv rows | store rows | ε | same as reference |");
        table.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
        table.AppendLine(Inv($"| reference | – | – | – | {reference.CompletedRounds} | {reference.CsvRows} | {reference.StoreRows} | {reference.FinalEpsilon} | – |"));
        var passed = 0;
        for (var run = 1; run <= settings.Runs; run++)
        {
            var random = new Random(unchecked((int)(settings.Seed * 1_000_003 + run)));
            var killRound = random.Next(1, settings.Rounds + 1);
            var delay = random.NextDouble() * roundSeconds;
            var (outcome, kill, seconds) = await RunOnceAsync(coordinatorDll, clientDll, Path.Combine(settings.OutputDirectory, Inv($"run-{run:D2}")), (killRound, delay), cancellationToken).ConfigureAwait(false);
            var same = outcome.CompletedRounds == reference.CompletedRounds && outcome.CsvRows == reference.CsvRows && outcome.StoreRows == reference.StoreRows
                && outcome.RoundColumn == reference.RoundColumn && outcome.EpsilonColumn.SequenceEqual(reference.EpsilonColumn) && outcome.FinalEpsilon == reference.FinalEpsilon;
            passed += same ? 1 : 0;
            var line = Inv($"| {run} | {kill?.Round.ToString(CultureInfo.InvariantCulture) ?? "(not killed)"} | {kill?.DelaySeconds:F2} | {kill?.CommittedAtKill} | {outcome.CompletedRounds} | {outcome.CsvRows} | {outcome.StoreRows} | {outcome.FinalEpsilon} | {(same && kill is not null ? "yes" : "NO")} |");
            table.AppendLine(line);
            console.WriteLine(Inv($"fault: run {run}: {line} ({seconds:F1} s)"));
            if (kill is null)
            {
                passed -= same ? 1 : 0; // a run the kill missed proves nothing
            }
        }

        var summary = Inv($"{passed} of {settings.Runs} runs killed with SIGKILL during a round finished with the completed rounds, metrics rows and ε of the uninterrupted run ({settings.Agents} agents, {settings.Rounds} rounds, store {settings.Store}, seed {settings.Seed}; {clock.Elapsed.TotalMinutes:F1} min in all).");
        var text = table + Environment.NewLine + summary + Environment.NewLine;
        await File.WriteAllTextAsync(Path.Combine(settings.OutputDirectory, "fault.md"), text, cancellationToken).ConfigureAwait(false);
        console.WriteLine();
        console.WriteLine(text);
        return passed == settings.Runs ? 0 : 1;
    }

    private async Task<(Outcome Outcome, Kill? Kill, double Seconds)> RunOnceAsync(string coordinatorDll, string clientDll, string directory, (int Round, double Delay)? kill, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        var port = ChildProcesses.FreePort();
        var address = Inv($"http://127.0.0.1:{port}");
        var scenario = new Scenarios.Scenario
        {
            Name = "fault",
            Clients = settings.Agents,
            MinResults = 1,
            Rounds = settings.Rounds,
            Model = "mlp",
            Strategy = new Scenarios.StrategySection { Name = "fedavg" },
            Training = new Scenarios.TrainingSection { Epochs = 3, BatchSize = 32, Optimizer = "sgd", LearningRate = 0.05 },
            Data = new Scenarios.DataSection { Source = "synthetic", Partition = "iid", Normalization = "none", SyntheticCount = 3000, SyntheticClasses = 4 },
            RoundDeadlineSeconds = 120,
            Seed = settings.Seed,
            AgentThreads = 1,
            Deterministic = true,
            Mode = "multi-process",
        };
        var state = Path.Combine(directory, "coordinator");
        var coordinatorSettings = Scenarios.FederationPlan.Coordinator(scenario, state);
        coordinatorSettings["Coordinator:Resume"] = "true";
        coordinatorSettings["Coordinator:Store"] = settings.Store;
        coordinatorSettings["Coordinator:HeartbeatSeconds"] = "1";
        coordinatorSettings["Coordinator:AgentTimeoutSeconds"] = "10";
        coordinatorSettings["Coordinator:Prometheus:Enabled"] = "false";
        coordinatorSettings["Coordinator:Privacy:Enabled"] = "true";
        coordinatorSettings["Coordinator:Privacy:SampleRate"] = "1";
        coordinatorSettings["Coordinator:Privacy:NoiseMultiplier"] = "1.1";
        coordinatorSettings["Coordinator:Privacy:ClipBound"] = "1";
        coordinatorSettings["Coordinator:Privacy:Seed"] = Inv($"fault-{settings.Seed}");
        coordinatorSettings["Coordinator:FractionFit"] = "1";
        coordinatorSettings["Coordinator:MinFit"] = "1";
        string[] coordinatorArguments = ["--urls", address, .. coordinatorSettings.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })];

        var processes = new List<Process>();
        var clock = Stopwatch.StartNew();
        Kill? done = null;
        try
        {
            var coordinator = ChildProcesses.StartDotnet(coordinatorDll, coordinatorArguments, Path.Combine(directory, "coordinator.log"));
            processes.Add(coordinator);
            await ChildProcesses.WaitForCoordinatorAsync(address, coordinator, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < settings.Agents; i++)
            {
                var agent = Scenarios.FederationPlan.Agent(scenario, i, address, Path.Combine(directory, Inv($"agent-{i:D4}")));
                agent["Client:ReconnectMinSeconds"] = "0.2";
                agent["Client:ReconnectMaxSeconds"] = "1";
                processes.Add(ChildProcesses.StartDotnet(clientDll, [.. agent.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })], Path.Combine(directory, Inv($"agent-{i:D4}.log"))));
            }

            if (kill is { } k && await WaitForRoundAsync(address, coordinator, k.Round, cancellationToken).ConfigureAwait(false) is > 0 and var inRound)
            {
                k = (inRound, k.Delay);
                await Task.Delay(TimeSpan.FromSeconds(k.Delay), TimeProvider.System, cancellationToken).ConfigureAwait(false);
                if (!coordinator.HasExited)
                {
                    coordinator.Kill(); // SIGKILL on Linux: no shutdown code runs
                    await coordinator.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                    done = new Kill(k.Round, k.Delay, CommittedRounds(state));
                    File.AppendAllText(Path.Combine(directory, "coordinator.log"), Inv($"=== fault: SIGKILL in round {k.Round} after {k.Delay:F2} s; {done.CommittedAtKill} rounds committed ==={Environment.NewLine}"));
                    coordinator = ChildProcesses.StartDotnet(coordinatorDll, coordinatorArguments, Path.Combine(directory, "coordinator.log"), append: true);
                    processes.Add(coordinator);
                }
            }

            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromMinutes(10));
            await coordinator.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            if (coordinator.ExitCode != 0)
            {
                throw new InvalidOperationException(Inv($"The coordinator of {directory} exited with code {coordinator.ExitCode}; see its log."));
            }

            foreach (var agent in processes.Where(p => !p.HasExited))
            {
                using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                grace.CancelAfter(TimeSpan.FromSeconds(20));
                try
                {
                    await agent.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                }
            }
        }
        finally
        {
            foreach (var process in processes)
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                process.Dispose();
            }
        }

        return (Read(state), done, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Rounds the store holds (read after the kill, before the restart).</summary>
    private int CommittedRounds(string state)
    {
        if (settings.Store == "file")
        {
            var current = Path.Combine(state, "CURRENT");
            return File.Exists(current) ? int.Parse(File.ReadAllText(current).Trim()["round-".Length..^".safetensors".Length], CultureInfo.InvariantCulture) : 0;
        }

        using var store = new Coordinator.State.SqliteRoundStateStore(state, Path.Combine(state, "coordinator.db"));
        return store.TryLoad() is { } checkpoint ? store.Rounds(checkpoint.RunId).Count : 0;
    }

    private Outcome Read(string state)
    {
        var lines = File.ReadAllLines(Path.Combine(state, "rounds.csv")).Where(l => l.Length > 0).ToArray();
        var header = lines[0].Split(',');
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        string[] Column(string name) => [.. rows.Select(r => Array.IndexOf(header, name) is var i and >= 0 && i < r.Length ? r[i] : "")];
        var epsilon = Column("epsilon");
        int storeRows;
        int completed;
        string finalEpsilon;
        if (settings.Store == "sqlite")
        {
            using var store = new Coordinator.State.SqliteRoundStateStore(state, Path.Combine(state, "coordinator.db"));
            var checkpoint = store.TryLoad() ?? throw new InvalidDataException($"'{state}' holds no completed round.");
            var stored = store.Rounds(checkpoint.RunId);
            storeRows = stored.Count;
            completed = checkpoint.Round;
            finalEpsilon = stored[^1].Epsilon?.ToString("G8", CultureInfo.InvariantCulture) ?? "";
        }
        else
        {
            var checkpoint = new Coordinator.State.FileRoundStateStore(state).TryLoad() ?? throw new InvalidDataException($"'{state}' holds no completed round.");
            storeRows = checkpoint.History.Count;
            completed = checkpoint.Round;
            finalEpsilon = epsilon.Length > 0 ? epsilon[^1] : "";
        }

        return new Outcome(completed, rows.Count, storeRows, epsilon, finalEpsilon, string.Join(' ', Column("round")));
    }

    /// <summary>Mean wall time of the rounds in <paramref name="csv"/>.</summary>
    private static double MeanRoundSeconds(string csv)
    {
        var lines = File.ReadAllLines(csv);
        var column = Array.IndexOf(lines[0].Split(','), "wall_s");
        return lines.Skip(1).Where(l => l.Length > 0).Average(l => double.Parse(l.Split(',')[column], CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Waits until round <paramref name="round"/> (or, should the polls miss it, a later one) is in progress and returns
    /// that round; 0 when the run ended first.
    /// </summary>
    internal static async Task<int> WaitForRoundAsync(string address, Process coordinator, int round, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(5) && !coordinator.HasExited)
        {
            try
            {
                var status = await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current }, deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (status.Finished)
                {
                    return 0;
                }

                if (status.CurrentRound >= round)
                {
                    return status.CurrentRound;
                }
            }
            catch (Grpc.Core.RpcException)
            {
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), TimeProvider.System, cancellationToken).ConfigureAwait(false);
        }

        return 0;
    }
}
