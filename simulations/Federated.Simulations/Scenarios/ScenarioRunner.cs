using System.Diagnostics;
using System.Globalization;
using Federated.Learning.Runtime;
using Federated.Simulations.Evaluate;
using Federated.Simulations.Launch;

namespace Federated.Simulations.Scenarios;

/// <summary>Runs a scenario in its mode, prints progress, and writes the run folder.</summary>
public static class ScenarioRunner
{
    /// <summary>Runs <paramref name="scenario"/> into <paramref name="runDirectory"/> (created, must be empty or absent).</summary>
    /// <returns>The process exit code: 0 when every round completed.</returns>
    /// <param name="scenario">The validated scenario.</param>
    /// <param name="runDirectory">The run folder.</param>
    /// <param name="console">Where progress goes.</param>
    /// <param name="interactive">True when <paramref name="console"/> is a terminal: a live status line is redrawn under the round lines.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    public static async Task<int> RunAsync(Scenario scenario, string runDirectory, TextWriter console, CancellationToken cancellationToken, bool interactive = false)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(console);
        if (Directory.Exists(runDirectory) && Directory.EnumerateFileSystemEntries(runDirectory).Any())
        {
            throw new IOException($"Run folder '{runDirectory}' is not empty: choose another --out or remove it.");
        }

        Directory.CreateDirectory(runDirectory);
        File.WriteAllText(Path.Combine(runDirectory, "scenario.json"), scenario.ToJson());
        var partition = PartitionReport.Write(scenario, runDirectory);
        var roundsCsv = Path.Combine(runDirectory, "coordinator", "rounds.csv");
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"scenario {scenario.Name}: {scenario.Clients} clients ({scenario.Mode}), {(scenario.Async is { } fedbuff ? $"{scenario.Rounds} FedBuff versions of K = {fedbuff.BufferSize} updates, {fedbuff.Concurrency} agents training at a time" : $"{scenario.Rounds} rounds of {scenario.Strategy.Name}")}{(scenario.Speeds is { } speeds ? $", agent speeds {speeds.Distribution} {speeds.Spread}× apart on a virtual clock" : "")}; run folder {runDirectory}"));
        var clock = Stopwatch.StartNew();
        using var progressStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var printer = new LiveProgress(scenario, clock, console, interactive);
        var progress = printer.FollowAsync(roundsCsv, progressStop.Token);
        var exitCode = 0;
        VirtualPoolStats? pool = null;
        try
        {
            if (scenario.Mode == "multi-process")
            {
                exitCode = await new ProcessLauncher(scenario, [], runDirectory, TextWriter.Null) { CoordinatorReady = printer.CoordinatorReady }.RunAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                pool = await InProcessFederation.RunAsync(
                    scenario,
                    runDirectory,
                    address =>
                    {
                        printer.CoordinatorReady(address);
                        return Task.CompletedTask;
                    },
                    cancellationToken).ConfigureAwait(false);
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
        printer.Finish();

        // In-process, this process held the coordinator and every agent; multi-process, the coordinator's own peak.
        var peak = scenario.Mode == "multi-process" ? rounds.Select(r => r.PeakRssMb).DefaultIfEmpty(double.NaN).Max() : ProcessMemory.PeakRssMegabytes();
        var wall = clock.Elapsed.TotalSeconds;
        RunEvaluationResult? final = null;
        if (rounds.Count > 0 && !cancellationToken.IsCancellationRequested)
        {
            try
            {
                final = RunEvaluation.Evaluate(runDirectory, round: null, cancellationToken);
            }
            catch (Exception e) when (e is ArgumentException or ScenarioException or InvalidDataException or IOException or InvalidOperationException)
            {
                console.WriteLine($"the final model could not be evaluated class by class: {e.Message}");
            }
        }

        RunReport.Write(scenario, runDirectory, rounds, wall, peak, pool, partition, final);
        var budgetStop = rounds.Count > 0 && scenario.Privacy?.StoppedByBudget(scenario, rounds) == true;
        var complete = rounds.Count == scenario.Rounds || budgetStop;
        console.WriteLine(complete
            ? string.Create(CultureInfo.InvariantCulture, $"done in {wall:F1} s: final accuracy {rounds[^1].Accuracy:P2}{(rounds[^1].Epsilon is { } epsilon ? $", ε = {epsilon:G4}" : "")}{(budgetStop ? $"; the privacy budget stopped the run after {rounds.Count} of {scenario.Rounds} rounds" : "")}; report {Path.Combine(runDirectory, "report.md")}")
            : $"the run stopped after {rounds.Count} of {scenario.Rounds} rounds; see {Path.Combine(runDirectory, "coordinator.log")}");
        return complete && exitCode == 0 ? 0 : 1;
    }
}
