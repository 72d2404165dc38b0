using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Net.Client;

namespace Federated.Simulations.Launch;

/// <summary>Starts the coordinator and the agents as separate processes, waits for the run, and reports.</summary>
internal sealed class ProcessLauncher(Scenarios.Scenario scenario, IReadOnlyList<string> extra, string outputDirectory, TextWriter console)
{
    /// <summary>Called with the coordinator's address once it answers (the live progress display asks it for status).</summary>
    public Action<string>? CoordinatorReady { get; init; }

    /// <summary>The launch command's settings as a scenario (multi-process mode).</summary>
    public static Scenarios.Scenario ToScenario(LaunchSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new Scenarios.Scenario
        {
            Name = "launch",
            Clients = settings.Agents,
            MinResults = settings.Agents,
            Rounds = settings.Rounds,
            Model = settings.Model,
            Strategy = new Scenarios.StrategySection { Name = settings.Strategy },
            Training = new Scenarios.TrainingSection { Epochs = settings.Epochs, BatchSize = settings.BatchSize, Optimizer = settings.Optimizer, LearningRate = settings.LearningRate },
            Data = new Scenarios.DataSection { Source = "idx", Directory = settings.DataDirectory, Partition = settings.Partition, MaxExamplesPerClient = settings.MaxExamples },
            RoundDeadlineSeconds = settings.DeadlineSeconds,
            Seed = settings.Seed,
            AgentThreads = settings.AgentThreads,
            Mode = "multi-process",
        };
    }

    private static IEnumerable<string> ToArguments(IReadOnlyDictionary<string, string> settings) =>
        settings.SelectMany(kv => new[] { "--" + kv.Key, kv.Value });

    private readonly List<Process> _processes = [];

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var root = FindRepositoryRoot();
        var configuration = typeof(ProcessLauncher).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "BuildConfiguration")?.Value ?? "Release";
        var coordinatorDll = Path.Combine(root, "src", "Coordinator", "bin", configuration, "net10.0", "federated-coordinator.dll");
        var clientDll = Path.Combine(root, "src", "Client", "bin", configuration, "net10.0", "federated-client.dll");
        foreach (var dll in new[] { coordinatorDll, clientDll })
        {
            if (!File.Exists(dll))
            {
                throw new InvalidOperationException($"'{dll}' is missing: build the solution with -c {configuration} first.");
            }
        }

        Directory.CreateDirectory(outputDirectory);
        var port = ChildProcesses.FreePort();
        var address = $"http://127.0.0.1:{port}";
        var stopwatch = Stopwatch.StartNew();
        try
        {
            var coordinator = Start(coordinatorDll, "coordinator",
                ["--urls", address, .. ToArguments(FederationPlan(scenario, outputDirectory)), .. ExtraSettings("Coordinator:")]);
            await WaitForCoordinatorAsync(address, coordinator, cancellationToken).ConfigureAwait(false);
            CoordinatorReady?.Invoke(address);
            for (var i = 0; i < scenario.Clients; i++)
            {
                Start(clientDll, $"agent-{i}",
                    [.. ToArguments(Scenarios.FederationPlan.Agent(scenario, i, address, Path.Combine(outputDirectory, $"agent-{i:D4}"))), .. ExtraSettings("Client:")]);
            }

            console.WriteLine($"launch: coordinator on {address} and {scenario.Clients} agents; logs in {outputDirectory}");
            await coordinator.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            foreach (var agent in _processes.Skip(1))
            {
                using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                grace.CancelAfter(TimeSpan.FromSeconds(20));
                try
                {
                    await agent.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    console.WriteLine($"launch: agent {agent.Id} did not stop after the run; killing it");
                }
            }

            var metrics = Path.Combine(outputDirectory, "coordinator", "rounds.csv");
            if (coordinator.ExitCode != 0 || !File.Exists(metrics))
            {
                console.WriteLine($"launch: the coordinator exited with code {coordinator.ExitCode}; see {outputDirectory}/coordinator.log");
                return 1;
            }

            var summary = Summarize(metrics, stopwatch.Elapsed);
            File.WriteAllText(Path.Combine(outputDirectory, "summary.md"), summary);
            console.WriteLine(summary);
            return 0;
        }
        finally
        {
            foreach (var process in _processes)
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                process.Dispose();
            }
        }
    }

    private IEnumerable<string> ExtraSettings(string prefix) =>
        extra.Where(s => s.StartsWith(prefix, StringComparison.Ordinal)).Select(s => "--" + s);

    private static Dictionary<string, string> FederationPlan(Scenarios.Scenario scenario, string outputDirectory) =>
        Scenarios.FederationPlan.Coordinator(scenario, Path.Combine(outputDirectory, "coordinator"));

    private Process Start(string dll, string name, IReadOnlyList<string> arguments)
    {
        var process = ChildProcesses.StartDotnet(dll, arguments, Path.Combine(outputDirectory, $"{name}.log"));
        _processes.Add(process);
        return process;
    }

    private static async Task WaitForCoordinatorAsync(string address, Process coordinator, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (coordinator.HasExited)
            {
                throw new InvalidOperationException($"The coordinator exited with code {coordinator.ExitCode} before it listened; see its log.");
            }

            try
            {
                await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current }, deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Grpc.Core.RpcException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }
        }

        throw new TimeoutException("The coordinator did not answer within 120 s.");
    }

    private string Summarize(string metricsPath, TimeSpan elapsed)
    {
        var lines = File.ReadAllLines(metricsPath);
        var header = lines[0].Split(',');
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        string[] columns =
        [
            "round", "wall_s", "slowest_train_s", "overhead_s", "collect_s", "aggregate_s", "evaluate_s", "checkpoint_s", "results", "failures",
            "test_accuracy", "test_loss", "down_payload_bytes_per_agent", "down_wire_bytes_per_agent", "up_payload_bytes_per_agent", "up_wire_bytes_per_agent", "peak_rss_mb",
        ];
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{scenario.Clients} agents, {scenario.Data.Partition}{(scenario.Data.MaxExamplesPerClient > 0 ? $" (≤ {scenario.Data.MaxExamplesPerClient} samples each)" : "")}, {scenario.Model}, {scenario.Strategy.Name}, {scenario.Training.Optimizer} lr {scenario.Training.LearningRate}, batch {scenario.Training.BatchSize}, {scenario.Training.Epochs} local epoch(s), {scenario.Rounds} rounds; agents on {scenario.AgentThreads} libtorch thread(s) each; whole launch {elapsed.TotalSeconds:F1} s");
        text.AppendLine();
        text.AppendLine("| " + string.Join(" | ", columns) + " |");
        text.AppendLine("|" + string.Concat(columns.Select(_ => "---:|")));
        foreach (var row in rows)
        {
            text.AppendLine("| " + string.Join(" | ", columns.Select(c => Array.IndexOf(header, c) is var i and >= 0 && i < row.Length ? row[i] : "")) + " |");
        }

        return text.ToString();
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Federated.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Could not find Federated.sln above the launcher; run it from the repository's build output.");
    }
}
