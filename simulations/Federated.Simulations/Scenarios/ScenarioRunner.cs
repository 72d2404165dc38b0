using System.Diagnostics;
using System.Globalization;
using Federated.Learning.Runtime;
using Federated.Simulations.Launch;

namespace Federated.Simulations.Scenarios;

/// <summary>Runs a scenario in its mode, prints progress, and writes the run folder.</summary>
public static class ScenarioRunner
{
    /// <summary>Runs <paramref name="scenario"/> into <paramref name="runDirectory"/> (created, must be empty or absent).</summary>
    /// <returns>The process exit code: 0 when every round completed.</returns>
    public static async Task<int> RunAsync(Scenario scenario, string runDirectory, TextWriter console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(console);
        if (Directory.Exists(runDirectory) && Directory.EnumerateFileSystemEntries(runDirectory).Any())
        {
            throw new IOException($"Run folder '{runDirectory}' is not empty: choose another --out or remove it.");
        }

        Directory.CreateDirectory(runDirectory);
        File.WriteAllText(Path.Combine(runDirectory, "scenario.json"), scenario.ToJson());
        var roundsCsv = Path.Combine(runDirectory, "coordinator", "rounds.csv");
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"scenario {scenario.Name}: {scenario.Clients} clients ({scenario.Mode}), {scenario.Rounds} rounds of {scenario.Strategy.Name}; run folder {runDirectory}"));
        var clock = Stopwatch.StartNew();
        using var progressStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var printer = new ProgressPrinter(scenario, clock, console);
        var progress = printer.FollowAsync(roundsCsv, progressStop.Token);
        var exitCode = 0;
        try
        {
            if (scenario.Mode == "multi-process")
            {
                exitCode = await new ProcessLauncher(scenario, [], runDirectory, TextWriter.Null).RunAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await InProcessFederation.RunAsync(scenario, runDirectory, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await progressStop.CancelAsync().ConfigureAwait(false);
            try
            {
                await progress.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        var rounds = RunReport.ReadRounds(roundsCsv);
        printer.Print(rounds);

        // In-process, this process held the coordinator and every agent; multi-process, the coordinator's own peak.
        var peak = scenario.Mode == "multi-process" ? rounds.Select(r => r.PeakRssMb).DefaultIfEmpty(double.NaN).Max() : ProcessMemory.PeakRssMegabytes();
        RunReport.Write(scenario, runDirectory, rounds, clock.Elapsed.TotalSeconds, peak);
        var complete = rounds.Count == scenario.Rounds;
        console.WriteLine(complete
            ? string.Create(CultureInfo.InvariantCulture, $"done in {clock.Elapsed.TotalSeconds:F1} s: final accuracy {rounds[^1].Accuracy:P2}; report {Path.Combine(runDirectory, "report.md")}")
            : $"the run stopped after {rounds.Count} of {scenario.Rounds} rounds; see {Path.Combine(runDirectory, "coordinator.log")}");
        return complete && exitCode == 0 ? 0 : 1;
    }

    /// <summary>Prints each round once, as it appears in the coordinator's rounds.csv (plain lines: fit for logs and terminals).</summary>
    private sealed class ProgressPrinter(Scenario scenario, Stopwatch clock, TextWriter console)
    {
        private readonly Lock _gate = new();
        private int _printed;

        public async Task FollowAsync(string roundsCsv, CancellationToken cancellationToken)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), TimeProvider.System);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    Print(RunReport.ReadRounds(roundsCsv));
                }
                catch (IOException)
                {
                    // The coordinator is writing the file; read it on the next tick.
                }
            }
        }

        public void Print(IReadOnlyList<RoundRecord> rounds)
        {
            lock (_gate)
            {
                foreach (var r in rounds.Skip(_printed))
                {
                    var perRound = clock.Elapsed.TotalSeconds / Math.Max(1, r.Round);
                    var eta = TimeSpan.FromSeconds(perRound * (scenario.Rounds - r.Round));
                    console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {r.Round,4}/{scenario.Rounds} | participants {r.Participants,4} dropped {r.Dropped,3} | accuracy {r.Accuracy,7:P2} loss {r.Loss:F4} | up {r.BytesUp / 1e6,8:F2} MB down {r.BytesDown / 1e6,8:F2} MB | {r.DurationS,6:F2} s | ETA {eta:hh\\:mm\\:ss}"));
                    _printed++;
                }
            }
        }
    }
}
