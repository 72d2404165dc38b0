using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Federated.Protocol;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Federated.Simulations.Launch;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Simulations.Load;

/// <summary>Settings of a load test.</summary>
/// <param name="Agents">Concurrent agents, each with its own session stream.</param>
/// <param name="Seconds">The measured window, after every session is open.</param>
/// <param name="HeartbeatSeconds">Each agent's heartbeat period.</param>
/// <param name="UploadBytes">Size of each agent's small update.</param>
/// <param name="UploadSeconds">Each agent's upload period.</param>
/// <param name="Seed">Seed of the agents' phases.</param>
/// <param name="OutputDirectory">Where load.md, load.json and the coordinator's log go.</param>
internal sealed record LoadSettings(int Agents, double Seconds, double HeartbeatSeconds, int UploadBytes, double UploadSeconds, int Seed, string OutputDirectory);

/// <summary>What a load test measured.</summary>
internal sealed record LoadReport(
    int Agents,
    double WindowSeconds,
    long HeartbeatsSent,
    long HeartbeatsAcknowledged,
    double HeartbeatP50Ms,
    double HeartbeatP99Ms,
    double HeartbeatMaxMs,
    long Uploads,
    double UploadP50Ms,
    double UploadP99Ms,
    double EnrolSeconds,
    double CoordinatorCpuSeconds,
    double CoordinatorCores,
    double CoordinatorRssMb,
    double CoordinatorPeakRssMb,
    long Errors,
    IReadOnlyList<string> FirstErrors);

/// <summary>
/// The load test: a coordinator process on loopback and N agents in this process, each enrolled and holding its own
/// session stream, sending heartbeats that ask for an acknowledgement (the round trip is the heartbeat latency) and
/// now and then a small update through the chunked Upload RPC, for a fixed window. The coordinator's CPU time and RSS
/// come from /proc. No round runs (the coordinator waits for one more agent than there are), so the figures are the
/// cost of holding the streams, not of training.
/// </summary>
internal sealed class LoadRunner(LoadSettings settings, TextWriter console)
{
    private const int MaxErrorsListed = 10;

    private readonly List<string> _errors = [];
    private long _errorCount;

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs the test and writes its report.</summary>
    public async Task<LoadReport> RunAsync(CancellationToken cancellationToken)
    {
        ChildProcesses.ResetDirectory(settings.OutputDirectory);
        var address = Inv($"http://127.0.0.1:{ChildProcesses.FreePort()}");
        var coordinator = ChildProcesses.StartDotnet(ChildProcesses.ShippedDll("Coordinator", "federated-coordinator.dll"), [.. CoordinatorArguments(address)], Path.Combine(settings.OutputDirectory, "coordinator.log"));
        try
        {
            await ChildProcesses.WaitForCoordinatorAsync(address, coordinator, cancellationToken).ConfigureAwait(false);
            var report = await DriveAsync(address, coordinator, cancellationToken).ConfigureAwait(false);
            Write(report);
            return report;
        }
        finally
        {
            if (!coordinator.HasExited)
            {
                coordinator.Kill();
                await coordinator.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            coordinator.Dispose();
        }
    }

    private IEnumerable<string> CoordinatorArguments(string address)
    {
        var plan = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Coordinator:StateDirectory"] = Path.Combine(settings.OutputDirectory, "coordinator"),
            ["Coordinator:Model"] = "mlp",
            ["Coordinator:NumClasses"] = "10",
            ["Coordinator:Rounds"] = "1",
            ["Coordinator:MinAvailable"] = Inv($"{settings.Agents + 1}"),
            ["Coordinator:WaitForAgentsSeconds"] = "86400",
            ["Coordinator:Evaluation:Source"] = "none",
            ["Coordinator:Training:Optimizer"] = "sgd",
            ["Coordinator:HeartbeatSeconds"] = Inv($"{settings.HeartbeatSeconds}"),
            ["Coordinator:AgentTimeoutSeconds"] = Inv($"{Math.Max(30, settings.HeartbeatSeconds * 10)}"),
            ["Coordinator:Prometheus:Enabled"] = "false",
            ["Coordinator:Security:Mode"] = "open",
            ["Coordinator:Security:Plaintext"] = "loopback",
            ["Coordinator:Security:EnrolmentsPerMinute"] = "0",
        };
        return ["--urls", address, .. plan.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })];
    }

    private async Task<LoadReport> DriveAsync(string address, Process coordinator, CancellationToken cancellationToken)
    {
        // Kestrel allows 100 streams per connection by default: the handler opens more connections as it needs them.
        using var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan };
        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = false });
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);

        var enrolClock = Stopwatch.StartNew();
        var tokens = new string[settings.Agents];
        await Parallel.ForEachAsync(Enumerable.Range(0, settings.Agents), new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var reply = await client.EnrollAsync(
                new EnrollRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = Inv($"load-{i:D5}"), Capabilities = new Capabilities { Device = "cpu", NumExamples = 100 } },
                cancellationToken: ct).ResponseAsync.ConfigureAwait(false);
            tokens[i] = reply.SessionToken;
        }).ConfigureAwait(false);
        var enrolSeconds = enrolClock.Elapsed.TotalSeconds;
        console.WriteLine(Inv($"load: {settings.Agents} agents enrolled in {enrolSeconds:F1} s; opening their sessions"));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var agents = Enumerable.Range(0, settings.Agents).Select(i => new LoadAgent(i, tokens[i], settings, client, this)).ToArray();
        var running = agents.Select(a => a.RunAsync(stop.Token)).ToArray();
        await Task.WhenAll(agents.Select(a => a.Opened)).WaitAsync(TimeSpan.FromMinutes(5), cancellationToken).ConfigureAwait(false);
        console.WriteLine(Inv($"load: {settings.Agents} sessions open; measuring for {settings.Seconds:F0} s"));

        foreach (var agent in agents)
        {
            agent.Measure = true;
        }

        var cpuBefore = CpuSeconds(coordinator.Id);
        var window = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(settings.Seconds), TimeProvider.System, cancellationToken).ConfigureAwait(false);
        foreach (var agent in agents)
        {
            agent.Measure = false;
        }

        var windowSeconds = window.Elapsed.TotalSeconds;
        var cpu = CpuSeconds(coordinator.Id) - cpuBefore;
        var (rss, peak) = Memory(coordinator.Id);

        // Acknowledgements of the last heartbeats may still be on their way: give them a moment, then close.
        await Task.Delay(TimeSpan.FromSeconds(Math.Min(5, settings.HeartbeatSeconds * 2)), TimeProvider.System, cancellationToken).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(running).ConfigureAwait(false);

        var latencies = agents.SelectMany(a => a.Latencies).Order().ToArray();
        var uploads = agents.SelectMany(a => a.UploadLatencies).Order().ToArray();
        var sent = agents.Sum(a => a.MeasuredSent);
        var acknowledged = latencies.Length;
        if (acknowledged < sent)
        {
            Error(Inv($"{sent - acknowledged} of {sent} measured heartbeats were never acknowledged"));
        }

        return new LoadReport(
            settings.Agents,
            windowSeconds,
            sent,
            acknowledged,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.99),
            latencies.Length > 0 ? latencies[^1] : double.NaN,
            uploads.Length,
            Percentile(uploads, 0.50),
            Percentile(uploads, 0.99),
            enrolSeconds,
            cpu,
            cpu / windowSeconds,
            rss,
            peak,
            Interlocked.Read(ref _errorCount),
            [.. _errors]);
    }

    /// <summary>Records an error (an RPC that failed, a missing acknowledgement).</summary>
    internal void Error(string what)
    {
        Interlocked.Increment(ref _errorCount);
        lock (_errors)
        {
            if (_errors.Count < MaxErrorsListed)
            {
                _errors.Add(what);
            }
        }
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>User + system CPU seconds of process <paramref name="pid"/> (from /proc/PID/stat).</summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText(Inv($"/proc/{pid}/stat"));
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks / 100.0; // USER_HZ is 100 on Linux
    }

    /// <summary>Resident and peak resident set of process <paramref name="pid"/> in MB (from /proc/PID/status).</summary>
    private static (double Rss, double Peak) Memory(int pid)
    {
        double Field(string[] lines, string name) =>
            double.Parse(lines.First(l => l.StartsWith(name, StringComparison.Ordinal)).Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        var status = File.ReadAllLines(Inv($"/proc/{pid}/status"));
        return (Field(status, "VmRSS"), Field(status, "VmHWM"));
    }

    private void Write(LoadReport report)
    {
        File.WriteAllText(Path.Combine(settings.OutputDirectory, "load.json"), JsonSerializer.Serialize(report, JsonOptions));
        var md = new StringBuilder();
        md.AppendLine("| agents (streams) | window s | heartbeats | acknowledged | heartbeat p50 ms | p99 ms | max ms | uploads | upload p50 ms | p99 ms | coordinator CPU s (cores) | coordinator RSS MB (peak) | errors |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        md.AppendLine(Inv($"| {report.Agents:N0} | {report.WindowSeconds:F1} | {report.HeartbeatsSent:N0} | {report.HeartbeatsAcknowledged:N0} | {report.HeartbeatP50Ms:F1} | {report.HeartbeatP99Ms:F1} | {report.HeartbeatMaxMs:F1} | {report.Uploads:N0} | {report.UploadP50Ms:F1} | {report.UploadP99Ms:F1} | {report.CoordinatorCpuSeconds:F1} ({report.CoordinatorCores:F2}) | {report.CoordinatorRssMb:F0} ({report.CoordinatorPeakRssMb:F0}) | {report.Errors} |"));
        foreach (var error in report.FirstErrors)
        {
            md.AppendLine("- " + error);
        }

        File.WriteAllText(Path.Combine(settings.OutputDirectory, "load.md"), md.ToString());
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>One simulated agent: a session stream, heartbeats with acknowledgements, periodic small uploads.</summary>
    private sealed class LoadAgent(int index, string token, LoadSettings settings, Protocol.V1.Coordinator.CoordinatorClient client, LoadRunner runner)
    {
        private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, long> _pending = new();
        private readonly Metadata _headers = new() { { "authorization", "Bearer " + token } };

        public Task Opened => _opened.Task;

        public volatile bool Measure;

        public List<double> Latencies { get; } = [];

        public List<double> UploadLatencies { get; } = [];

        public long MeasuredSent { get; private set; }

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            var random = new Random(HashCode.Combine(settings.Seed, index));
            Task reading = Task.CompletedTask, uploading = Task.CompletedTask;
            try
            {
                using var call = client.Session(_headers, cancellationToken: cancellationToken);
                try
                {
                    await call.RequestStream.WriteAsync(new AgentMessage { Hello = new Hello { AgentId = Inv($"load-{index:D5}"), ProtocolVersion = ProtocolVersion.Current, Capabilities = new Capabilities { Device = "cpu", NumExamples = 100 } } }, cancellationToken).ConfigureAwait(false);
                    reading = ReadAsync(call.ResponseStream, cancellationToken);
                    uploading = UploadLoopAsync(random.NextDouble(), cancellationToken);
                    await _opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false);

                    // Heartbeats at a random phase within the period, so that a thousand agents do not beat in step.
                    await Task.Delay(TimeSpan.FromSeconds(random.NextDouble() * settings.HeartbeatSeconds), TimeProvider.System, cancellationToken).ConfigureAwait(false);
                    using var timer = new PeriodicTimer(TimeSpan.FromSeconds(settings.HeartbeatSeconds), TimeProvider.System);
                    ulong sequence = 0;
                    do
                    {
                        sequence++;
                        var measured = Measure;
                        _pending[sequence] = measured ? Stopwatch.GetTimestamp() : -1;
                        if (measured)
                        {
                            MeasuredSent++;
                        }

                        await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new Heartbeat { Sequence = sequence, WantAck = true } }, cancellationToken).ConfigureAwait(false);
                    }
                    while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
                }
                finally
                {
                    await Quietly(reading, cancellationToken).ConfigureAwait(false);
                    await Quietly(uploading, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
            }
            catch (RpcException e)
            {
                _opened.TrySetResult();
                runner.Error(Inv($"agent {index}: session: {e.Status.StatusCode} {e.Status.Detail}"));
            }
        }

        private async Task Quietly(Task task, CancellationToken cancellationToken)
        {
            try
            {
                await task.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
            }
            catch (RpcException e)
            {
                runner.Error(Inv($"agent {index}: {e.Status.StatusCode} {e.Status.Detail}"));
            }
        }

        private async Task ReadAsync(IAsyncStreamReader<CoordinatorMessage> responses, CancellationToken cancellationToken)
        {
            try
            {
                while (await responses.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    var message = responses.Current;
                    if (message.KindCase == CoordinatorMessage.KindOneofCase.Welcome)
                    {
                        _opened.TrySetResult();
                    }
                    else if (message.KindCase == CoordinatorMessage.KindOneofCase.HeartbeatAck && _pending.TryRemove(message.HeartbeatAck.Sequence, out var sentAt) && sentAt >= 0)
                    {
                        lock (Latencies)
                        {
                            Latencies.Add(Stopwatch.GetElapsedTime(sentAt).TotalMilliseconds);
                        }
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
        }

        private async Task UploadLoopAsync(double phase, CancellationToken cancellationToken)
        {
            var data = new byte[settings.UploadBytes];
            Random.Shared.NextBytes(data);
            await _opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromSeconds(phase * settings.UploadSeconds), TimeProvider.System, cancellationToken).ConfigureAwait(false);
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(settings.UploadSeconds), TimeProvider.System);
            var n = 0;
            do
            {
                var measured = Measure;
                var started = Stopwatch.GetTimestamp();
                try
                {
                    using var upload = client.Upload(_headers, cancellationToken: cancellationToken);
                    var id = Inv($"load-{index:D5}-{n++}");
                    var payload = new SealedPayload(id, data, Math.Max(PayloadCodec.DefaultChunkBytes, data.Length));
                    var chunk = payload.GetChunk(0);
                    chunk.Header = payload.ToUploadHeader("load", 0);
                    await upload.RequestStream.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
                    await upload.RequestStream.CompleteAsync().ConfigureAwait(false);
                    var reply = await upload.ResponseAsync.ConfigureAwait(false);
                    if (!reply.Complete)
                    {
                        runner.Error(Inv($"agent {index}: upload {id} not complete"));
                    }
                    else if (measured)
                    {
                        lock (UploadLatencies)
                        {
                            UploadLatencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                        }
                    }
                }
                catch (RpcException e) when (!(e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested))
                {
                    runner.Error(Inv($"agent {index}: upload: {e.Status.StatusCode} {e.Status.Detail}"));
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
    }
}
