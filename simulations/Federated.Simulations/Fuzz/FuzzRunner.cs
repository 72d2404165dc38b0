using System.Globalization;
using System.Text;
using System.Text.Json;
using Federated.Protocol;
using Federated.Protocol.V1;
using Federated.Simulations.Scenarios;
using Grpc.Net.Client;

namespace Federated.Simulations.Fuzz;

/// <summary>Settings of a fuzz campaign.</summary>
/// <param name="Inputs">Inputs per target.</param>
/// <param name="Seed">Seed of the mutations.</param>
/// <param name="Targets">Target-name prefixes to run (empty: all).</param>
/// <param name="InputTimeout">Watchdog per input.</param>
/// <param name="OutputDirectory">Where fuzz.md, fuzz.json, the findings and the federation's run folder go.</param>
internal sealed record FuzzSettings(int Inputs, ulong Seed, IReadOnlyList<string> Targets, TimeSpan InputTimeout, string OutputDirectory);

/// <summary>What a campaign found, over every target, and whether the fuzzed coordinator still ran its federation.</summary>
/// <param name="Targets">One result per target.</param>
/// <param name="HeapGrowthBytes">Managed heap after the gRPC campaign minus before it (after full collections); -1 when no gRPC target ran.</param>
/// <param name="FederationRounds">Rounds the federation completed after the gRPC campaign (0 when it did not run).</param>
/// <param name="FederationExpected">Rounds it had to complete.</param>
internal sealed record FuzzReport(IReadOnlyList<FuzzTargetResult> Targets, long HeapGrowthBytes, int FederationRounds, int FederationExpected)
{
    /// <summary>The heap may grow by this much over a gRPC campaign (enrolled fuzz agents, logs, caches).</summary>
    public const long HeapGrowthLimit = 128L << 20;

    /// <summary>True when no target broke, the heap stayed bounded and the federation finished.</summary>
    public bool Clean =>
        Targets.All(t => t.Clean) && HeapGrowthBytes < HeapGrowthLimit && FederationRounds == FederationExpected;
}

/// <summary>
/// Runs the fuzz campaign: the offline decoders in this process, then every RPC of a live in-process coordinator;
/// afterwards the same coordinator must still run a small real federation (three agents, synthetic data) to the end.
/// </summary>
internal sealed class FuzzRunner(FuzzSettings settings, TextWriter console)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs the campaign and writes its report; returns it.</summary>
    public async Task<FuzzReport> RunAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(settings.OutputDirectory);
        var engine = new FuzzEngine(settings.Seed, settings.InputTimeout, Path.Combine(settings.OutputDirectory, "findings"));
        var results = new List<FuzzTargetResult>();
        var scratch = Path.Combine(settings.OutputDirectory, "scratch");
        foreach (var target in DecoderTargets.All(scratch).Where(Selected))
        {
            results.Add(await RunTargetAsync(engine, target, cancellationToken).ConfigureAwait(false));
        }

        long heapGrowth = -1;
        int rounds = 0, expected = 0;
        if (GrpcNames().Any(Selected))
        {
            var scenario = FederationScenario(settings.Seed);
            expected = scenario.Rounds;
            var run = Path.Combine(settings.OutputDirectory, "federation");
            if (Directory.Exists(run))
            {
                Directory.Delete(run, recursive: true);
            }

            Directory.CreateDirectory(run);
            await InProcessFederation.RunAsync(
                scenario,
                run,
                async address =>
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    var before = GC.GetTotalMemory(forceFullCollection: true);
                    using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 });
                    var token = string.Empty;
                    foreach (var target in GrpcTargets.All(channel.CreateCallInvoker(), () => token).Where(Selected))
                    {
                        // A fresh session for each target: a previous target may have ended the last one.
                        token = await EnrolAsync(channel, cancellationToken).ConfigureAwait(false);
                        results.Add(await RunTargetAsync(engine, target, cancellationToken).ConfigureAwait(false));
                    }

                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    heapGrowth = GC.GetTotalMemory(forceFullCollection: true) - before;
                    console.WriteLine(Inv($"fuzz: managed heap grew by {heapGrowth / 1048576.0:F1} MB over the gRPC campaign; now the federation runs"));
                },
                cancellationToken).ConfigureAwait(false);
            var csv = Path.Combine(run, "coordinator", "rounds.csv");
            rounds = File.Exists(csv) ? RunReport.ReadRounds(csv).Count(r => r.Participants == scenario.Clients) : 0;
        }

        var report = new FuzzReport(results, heapGrowth, rounds, expected);
        Write(report);
        return report;
    }

    private bool Selected(IFuzzTarget target) => Selected(target.Name);

    private bool Selected(string name) => settings.Targets.Count == 0 || settings.Targets.Any(t => name.StartsWith(t, StringComparison.Ordinal));

    private static IEnumerable<string> GrpcNames() => Protocol.V1.Coordinator.Descriptor.Methods.Select(m => "grpc:" + m.Name);

    /// <summary>Every target's name: the offline decoders', then one per RPC of the wire contract.</summary>
    internal static IReadOnlyList<string> TargetNames { get; } = ["codec", "payload", "stream-scanner", "chunks", "safetensors", "checkpoint", .. GrpcNames()];

    private async Task<FuzzTargetResult> RunTargetAsync(FuzzEngine engine, IFuzzTarget target, CancellationToken cancellationToken)
    {
        var result = await engine.RunAsync(target, settings.Inputs, cancellationToken).ConfigureAwait(false);
        console.WriteLine(Inv($"fuzz {result.Target,-20} {result.Inputs,8:N0} inputs  {result.Accepted,7:N0} accepted  {result.Rejected,8:N0} rejected  {result.Crashes} crashes  {result.Hangs} hangs  {result.OverAllocations} over-allocations  {result.Seconds,6:F1} s"));
        if (result.Breakdown is { Count: > 0 } breakdown)
        {
            console.WriteLine("    statuses: " + string.Join(", ", breakdown.Select(kv => Inv($"{kv.Key} {kv.Value:N0}"))));
        }

        foreach (var finding in result.Findings)
        {
            console.WriteLine("    " + finding);
        }

        return result;
    }

    /// <summary>Enrols the campaign's own (keyless) agent on the open-enrolment coordinator; returns its session token.</summary>
    private static async Task<string> EnrolAsync(GrpcChannel channel, CancellationToken cancellationToken)
    {
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var reply = await client.EnrollAsync(
                    new EnrollRequest { ProtocolVersion = ProtocolVersion.Current, AgentId = "fuzz-agent", Capabilities = new Capabilities { Device = "cpu", NumExamples = 10 } },
                    cancellationToken: cancellationToken).ResponseAsync.ConfigureAwait(false);
                return reply.SessionToken;
            }
            catch (Grpc.Core.RpcException) when (attempt < 5)
            {
                // The last target may have left the connection closed (see GrpcTargets): the next call opens another.
            }
        }
    }

    /// <summary>The federation the fuzzed coordinator must still run: three agents on synthetic images, two rounds.</summary>
    internal static Scenario FederationScenario(ulong seed) => new()
    {
        Name = "fuzz-federation",
        Clients = 3,
        Rounds = 2,
        Model = "mlp",
        Strategy = new StrategySection { Name = "fedavg" },
        Training = new TrainingSection { Epochs = 1, BatchSize = 32, Optimizer = "sgd", LearningRate = 0.05, Momentum = 0.9 },
        Data = new DataSection { Source = "synthetic", Partition = "iid", Normalization = "none", SyntheticCount = 600, SyntheticClasses = 4 },
        RoundDeadlineSeconds = 120,
        Seed = (long)(seed % int.MaxValue),
        AgentThreads = 1,
        Mode = "in-process",
    };

    private void Write(FuzzReport report)
    {
        File.WriteAllText(Path.Combine(settings.OutputDirectory, "fuzz.json"), JsonSerializer.Serialize(report, Indented));
        var md = new StringBuilder();
        md.AppendLine("| target | inputs | accepted | rejected | crashes | hangs | over-allocations | max bytes allocated by one input | corpus | s | clean refusal | outcomes |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var t in report.Targets)
        {
            md.AppendLine(Inv($"| {t.Target} | {t.Inputs:N0} | {t.Accepted:N0} | {t.Rejected:N0} | {t.Crashes} | {t.Hangs} | {t.OverAllocations} | {(t.MaxAllocatedBytes < 0 ? "–" : t.MaxAllocatedBytes.ToString("N0", CultureInfo.InvariantCulture))} | {t.CorpusSize} | {t.Seconds:F1} | {t.Contract} | {(t.Breakdown is null ? string.Empty : string.Join(", ", t.Breakdown.Select(kv => Inv($"{kv.Key} {kv.Value:N0}"))))} |"));
        }

        md.AppendLine();
        if (report.HeapGrowthBytes >= 0)
        {
            md.AppendLine(Inv($"Managed heap growth over the gRPC campaign (after full collections): {report.HeapGrowthBytes / 1048576.0:F1} MB (bound {FuzzReport.HeapGrowthLimit >> 20} MB)."));
            md.AppendLine(Inv($"Federation on the fuzzed coordinator afterwards: {report.FederationRounds} of {report.FederationExpected} rounds completed with every agent's result."));
        }

        foreach (var t in report.Targets.Where(t => t.Findings.Count > 0))
        {
            md.AppendLine();
            md.AppendLine(Inv($"Findings of {t.Target}:"));
            foreach (var f in t.Findings)
            {
                md.AppendLine("- " + f);
            }
        }

        File.WriteAllText(Path.Combine(settings.OutputDirectory, "fuzz.md"), md.ToString());
    }
}
