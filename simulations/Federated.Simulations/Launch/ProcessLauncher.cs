using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Net.Client;

namespace Federated.Simulations.Launch;

/// <summary>Starts the coordinator and the agents as separate processes, waits for the run, and reports.</summary>
internal sealed class ProcessLauncher(LaunchSettings settings, TextWriter console)
{
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

        if (Directory.Exists(settings.OutputDirectory))
        {
            Directory.Delete(settings.OutputDirectory, recursive: true);
        }

        Directory.CreateDirectory(settings.OutputDirectory);
        var port = FreePort();
        var address = $"http://127.0.0.1:{port}";
        var inv = CultureInfo.InvariantCulture;
        var stopwatch = Stopwatch.StartNew();
        try
        {
            var coordinator = Start(coordinatorDll, "coordinator",
            [
                "--urls", address,
                "--Coordinator:StateDirectory", Path.Combine(settings.OutputDirectory, "coordinator"),
                "--Coordinator:Resume", "false",
                "--Coordinator:ExitWhenDone", "true",
                "--Coordinator:Model", settings.Model,
                "--Coordinator:Strategy", settings.Strategy,
                "--Coordinator:Rounds", settings.Rounds.ToString(inv),
                "--Coordinator:MinAvailable", settings.Agents.ToString(inv),
                "--Coordinator:MinFit", settings.Agents.ToString(inv),
                "--Coordinator:Seed", settings.Seed.ToString(inv),
                "--Coordinator:RoundDeadlineSeconds", settings.DeadlineSeconds.ToString(inv),
                "--Coordinator:Training:Epochs", settings.Epochs.ToString(inv),
                "--Coordinator:Training:BatchSize", settings.BatchSize.ToString(inv),
                "--Coordinator:Training:Optimizer", settings.Optimizer,
                "--Coordinator:Training:LearningRate", settings.LearningRate.ToString(inv),
                "--Coordinator:Evaluation:Directory", settings.DataDirectory,
                "--Coordinator:WaitForAgentsSeconds", "300",
                .. ExtraSettings("Coordinator:"),
            ]);
            await WaitForCoordinatorAsync(address, coordinator, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < settings.Agents; i++)
            {
                Start(clientDll, $"agent-{i}",
                [
                    "--Client:CoordinatorAddress", address,
                    "--Client:AgentId", $"agent-{i:D3}",
                    "--Client:Threads", settings.AgentThreads.ToString(inv),
                    "--Client:Device", "cpu",
                    "--Client:StateDirectory", Path.Combine(settings.OutputDirectory, $"agent-{i:D3}"),
                    "--Client:Data:Source", "idx",
                    "--Client:Data:Directory", settings.DataDirectory,
                    "--Client:Data:Partition", settings.Partition,
                    "--Client:Data:Clients", settings.Agents.ToString(inv),
                    "--Client:Data:Index", i.ToString(inv),
                    "--Client:Data:Seed", settings.Seed.ToString(inv),
                    "--Client:Data:MaxExamples", settings.MaxExamples.ToString(inv),
                    .. ExtraSettings("Client:"),
                ]);
            }

            console.WriteLine($"launch: coordinator on {address} and {settings.Agents} agents; logs in {settings.OutputDirectory}");
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

            var metrics = Path.Combine(settings.OutputDirectory, "coordinator", "rounds.csv");
            if (coordinator.ExitCode != 0 || !File.Exists(metrics))
            {
                console.WriteLine($"launch: the coordinator exited with code {coordinator.ExitCode}; see {settings.OutputDirectory}/coordinator.log");
                return 1;
            }

            var summary = Summarize(metrics, stopwatch.Elapsed);
            File.WriteAllText(Path.Combine(settings.OutputDirectory, "summary.md"), summary);
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
        settings.Extra.Where(s => s.StartsWith(prefix, StringComparison.Ordinal)).Select(s => "--" + s);

    private Process Start(string dll, string name, IReadOnlyList<string> arguments)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_gcServer"] = "0";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {name}.");
        var log = new StreamWriter(Path.Combine(settings.OutputDirectory, $"{name}.log")) { AutoFlush = true };
        var gate = new Lock();
        void Write(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (gate)
            {
                log.WriteLine(line);
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Exited += (_, _) =>
        {
            lock (gate)
            {
                log.Dispose();
            }
        };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return process;
    }

    private static async Task WaitForCoordinatorAsync(string address, Process coordinator, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var client = new Coordinator.CoordinatorClient(channel);
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
        text.AppendLine(CultureInfo.InvariantCulture, $"{settings.Agents} agents, {settings.Partition}{(settings.MaxExamples > 0 ? $" (≤ {settings.MaxExamples} samples each)" : "")}, {settings.Model}, {settings.Strategy}, {settings.Optimizer} lr {settings.LearningRate}, batch {settings.BatchSize}, {settings.Epochs} local epoch(s), {settings.Rounds} rounds; agents on {settings.AgentThreads} libtorch thread(s) each; whole launch {elapsed.TotalSeconds:F1} s");
        text.AppendLine();
        text.AppendLine("| " + string.Join(" | ", columns) + " |");
        text.AppendLine("|" + string.Concat(columns.Select(_ => "---:|")));
        foreach (var row in rows)
        {
            text.AppendLine("| " + string.Join(" | ", columns.Select(c => Array.IndexOf(header, c) is var i and >= 0 && i < row.Length ? row[i] : "")) + " |");
        }

        return text.ToString();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
