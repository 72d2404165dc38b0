using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Federated.Learning.Reporting;

using Federated.Simulations.Evaluate;

namespace Federated.Simulations.Scenarios;

/// <summary>One round of a run, as the run folder records it (<see cref="Epsilon"/>: ε spent after the round, null without privacy, and then left out of metrics.json).</summary>
public sealed record RoundRecord(
    int Round,
    double Accuracy,
    double Loss,
    long BytesUp,
    long BytesDown,
    double DurationS,
    int Participants,
    int Dropped,
    double SlowestTrainS,
    double PeakRssMb,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Epsilon = null)
{
    /// <summary>Updates the coordinator received but did not aggregate (refused by validation or left out by a robust rule).</summary>
    public int Rejected { get; init; }

    /// <summary>False when the round failed (too few results, or its robust rule could not run) and kept the model.</summary>
    public bool Ok { get; init; } = true;

    /// <summary>Virtual seconds at the end of the round (or FedBuff flush) on the scenario's virtual clock; null without <c>speeds</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? VirtualS { get; init; }

    /// <summary>Mean staleness of a FedBuff flush's updates; null for synchronous rounds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? MeanStaleness { get; init; }

    /// <summary>Updates a FedBuff flush period rejected as too stale; null for synchronous rounds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? RejectedStale { get; init; }

    /// <summary>The global model's accuracy on each experience's test split (continual runs; null otherwise).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? ExperienceAccuracy { get; init; }

    /// <summary>
    /// The spread over the round's agents of their local test accuracy (each agent's own test split, the model it
    /// uses: global, global body under its head, or its personal model); null without local test splits.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MetricSpread? LocalAccuracy { get; init; }
}

/// <summary>The continual-learning figures of a run, as summary.json records them.</summary>
/// <param name="Stream">The stream.</param>
/// <param name="Methods">The agents' plug-ins.</param>
/// <param name="ConsolidateFisher">Whether the coordinator consolidated the Fisher diagonals.</param>
/// <param name="BoundaryRounds">The round after which row i of the matrix was measured (the last agent's end of experience i).</param>
/// <param name="Matrix">R[i][j]: the global model's accuracy on experience j after round <paramref name="BoundaryRounds"/>[i]; null when the run ended before the stream did.</param>
/// <param name="AverageAccuracy">Mean of the matrix's last row.</param>
/// <param name="Forgetting">Mean drop from the best earlier accuracy, over all experiences but the last.</param>
public sealed record ContinualSummary(string Stream, IReadOnlyList<string> Methods, bool ConsolidateFisher, IReadOnlyList<int> BoundaryRounds, double[][]? Matrix, double? AverageAccuracy, double? Forgetting);

/// <summary>Reads the coordinator's <c>rounds.csv</c> and writes the run folder's metrics, summary, plots and report.</summary>
public static class RunReport
{
    /// <summary>The prefix of the per-agent local test accuracy spread's columns in rounds.csv and metrics.csv.</summary>
    public const string LocalAccuracyPrefix = "local_acc";

    /// <summary>Classes up to which report.md tabulates the final model class by class (summary.json always holds them).</summary>
    public const int MaxClassRows = 20;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The rounds recorded so far (empty when the file does not exist yet).</summary>
    public static IReadOnlyList<RoundRecord> ReadRounds(string roundsCsv)
    {
        if (!File.Exists(roundsCsv))
        {
            return [];
        }

        var lines = File.ReadAllLines(roundsCsv);
        if (lines.Length < 2)
        {
            return [];
        }

        var header = lines[0].Split(',');
        double Get(string[] row, string column)
        {
            var i = Array.IndexOf(header, column);
            return i >= 0 && i < row.Length && double.TryParse(row[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
        }

        bool Ok(string[] row)
        {
            var i = Array.IndexOf(header, "ok");
            return i < 0 || i >= row.Length || row[i] != "false";
        }

        var experiences = header.Count(h => h.StartsWith("accuracy_exp", StringComparison.Ordinal));
        MetricSpread? Spread(string[] row)
        {
            var values = MetricSpread.Suffixes.Select(suffix => Get(row, $"{LocalAccuracyPrefix}_{suffix}")).ToArray();
            return double.IsFinite(values[1]) && values[0] > 0
                ? new MetricSpread((int)values[0], values[1], values[2], values[3], values[4], values[5], values[6])
                : null;
        }

        return lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).Select(row => new RoundRecord(
            (int)Get(row, "round"),
            Get(row, "test_accuracy"),
            Get(row, "test_loss"),
            (long)Get(row, "up_wire_bytes_total"),
            (long)Get(row, "down_wire_bytes_total"),
            Get(row, "wall_s"),
            (int)Get(row, "results"),
            (int)Get(row, "failures"),
            Get(row, "slowest_train_s"),
            Get(row, "peak_rss_mb"),
            double.IsFinite(Get(row, "epsilon")) ? Get(row, "epsilon") : null)
        {
            Rejected = double.IsNaN(Get(row, "rejected")) ? 0 : (int)Get(row, "rejected"),
            Ok = Ok(row),
            VirtualS = double.IsFinite(Get(row, "virtual_s")) ? Get(row, "virtual_s") : null,
            MeanStaleness = double.IsFinite(Get(row, "mean_staleness")) ? Get(row, "mean_staleness") : null,
            RejectedStale = double.IsFinite(Get(row, "rejected_stale")) ? (int)Get(row, "rejected_stale") : null,
            ExperienceAccuracy = experiences > 0 ? Enumerable.Range(0, experiences).Select(j => Get(row, $"accuracy_exp{j}")).ToArray() : null,
            LocalAccuracy = Spread(row),
        }).ToList();
    }

    /// <summary>Writes metrics.csv, metrics.json, the TensorBoard scalars, summary.json, the plots and report.md into <paramref name="runDirectory"/>.</summary>
    public static void Write(Scenario scenario, string runDirectory, IReadOnlyList<RoundRecord> rounds, double wallSeconds, double peakRssMb, VirtualPoolStats? pool = null, PartitionSummary? partition = null, RunEvaluationResult? final = null)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(rounds);
        var hasEpsilon = rounds.Any(r => r.Epsilon is not null);
        var experiences = rounds.Select(r => r.ExperienceAccuracy?.Count ?? 0).DefaultIfEmpty(0).Max();
        var csv = new StringBuilder("round,accuracy,loss,bytes_up,bytes_down,duration_s,participants,dropped,slowest_train_s" + (hasEpsilon ? ",epsilon" : ""));
        csv.Append(string.Concat(Enumerable.Range(0, experiences).Select(j => string.Create(CultureInfo.InvariantCulture, $",accuracy_exp{j}"))));
        var hasLocal = rounds.Any(r => r.LocalAccuracy is not null);
        csv.Append(hasLocal ? string.Concat(MetricSpread.Suffixes.Select(suffix => $",{LocalAccuracyPrefix}_{suffix}")) : "").Append('\n');
        foreach (var r in rounds)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r.Round},{r.Accuracy:F5},{r.Loss:F5},{r.BytesUp},{r.BytesDown},{r.DurationS:F3},{r.Participants},{r.Dropped},{r.SlowestTrainS:F3}");
            csv.Append(hasEpsilon ? string.Create(CultureInfo.InvariantCulture, $",{r.Epsilon:G8}") : "");
            for (var j = 0; j < experiences; j++)
            {
                csv.Append(CultureInfo.InvariantCulture, $",{(r.ExperienceAccuracy is { } a && j < a.Count ? a[j] : double.NaN):F5}");
            }

            if (hasLocal)
            {
                var local = r.LocalAccuracy;
                csv.Append(CultureInfo.InvariantCulture, $",{local?.Count ?? 0},{local?.Mean ?? double.NaN:F5},{local?.Std ?? double.NaN:F5},{local?.Min ?? double.NaN:F5},{local?.P10 ?? double.NaN:F5},{local?.Median ?? double.NaN:F5},{local?.Max ?? double.NaN:F5}");
            }

            csv.Append('\n');
        }

        File.WriteAllText(Path.Combine(runDirectory, "metrics.csv"), csv.ToString());
        File.WriteAllText(Path.Combine(runDirectory, "metrics.json"), JsonSerializer.Serialize(rounds, Json));
        TensorBoardExport.Write(runDirectory, rounds);
        var attackers = scenario.Attack.Choose(scenario.Clients, scenario.Seed).Order().Select(FederationPlan.AgentId).ToList();
        var attack = scenario.Attack.IsActive
            ? new AttackSummary(scenario.Attack.Kind, scenario.Attack.Fraction, scenario.Attack.ToClientOptions(scenario).Describe(), attackers)
            : null;
        var summary = new
        {
            Scenario = scenario.Name,
            Clients = scenario.Clients,
            Partition = scenario.Data.Partition,
            PartitionStats = partition,
            Strategy = scenario.Strategy.Name,
            Aggregator = scenario.Strategy.Options.GetValueOrDefault("aggregator"),
            Attack = attack,
            Rejected = rounds.Sum(r => r.Rejected),
            FailedRounds = rounds.Count(r => !r.Ok),
            FinalAccuracy = rounds.Count > 0 ? rounds[^1].Accuracy : double.NaN,
            BestAccuracy = rounds.Count > 0 ? rounds.Max(r => r.Accuracy) : double.NaN,
            Rounds = rounds.Count,
            WallS = Math.Round(wallSeconds, 3),
            MeanRoundS = rounds.Count > 0 ? Math.Round(rounds.Average(r => r.DurationS), 3) : double.NaN,
            PeakRssMb = Math.Round(peakRssMb, 1),
            BytesUp = rounds.Sum(r => r.BytesUp),
            BytesDown = rounds.Sum(r => r.BytesDown),
            Dropped = rounds.Sum(r => r.Dropped),
            VirtualPool = pool,
            Mode = scenario.Async is null ? "sync" : "fedbuff",
            VirtualS = rounds.Count > 0 ? rounds[^1].VirtualS : null,
            VirtualSToAccuracy85 = rounds.FirstOrDefault(r => r.Accuracy >= 0.85)?.VirtualS,
            RejectedStale = scenario.Async is null ? (int?)null : rounds.Sum(r => r.RejectedStale ?? 0),
            Privacy = scenario.Privacy is { } p
                ? new { FinalEpsilon = hasEpsilon ? rounds.Last(r => r.Epsilon is not null).Epsilon : null, p.Delta, p.SampleRate, Budget = p.Budget > 0 ? p.Budget : (double?)null, StoppedByBudget = p.StoppedByBudget(scenario, rounds) }
                : null,
            Continual = Continual(scenario, rounds),
            LocalAccuracy = rounds.LastOrDefault(r => r.LocalAccuracy is not null)?.LocalAccuracy,
            FinalClasses = final is null
                ? null
                : new
                {
                    final.Round,
                    PerClassAccuracy = final.Result.PerClassAccuracy.Select(a => double.IsNaN(a) ? (double?)null : Math.Round(a, 5)).ToArray(),
                    PredictedShare = final.PredictedShare.Select(v => Math.Round(v, 5)).ToArray(),
                    final.ClassesPredicted,
                },
        };
        File.WriteAllText(Path.Combine(runDirectory, "summary.json"), JsonSerializer.Serialize(summary, Json));

        var x = rounds.Select(r => (double)r.Round).ToArray();
        Plot(Path.Combine(runDirectory, "accuracy.png"), "Test accuracy per round", "accuracy", x, rounds.Select(r => r.Accuracy).ToArray());
        Plot(Path.Combine(runDirectory, "loss.png"), "Test loss per round", "loss", x, rounds.Select(r => r.Loss).ToArray());
        Plot(Path.Combine(runDirectory, "bytes.png"), "Bytes per round (MB)", "MB", x,
            rounds.Select(r => r.BytesUp / 1e6).ToArray(), "up", rounds.Select(r => r.BytesDown / 1e6).ToArray(), "down");

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"# {scenario.Name}");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture,
            $"{scenario.Clients} clients ({(scenario.Privacy is { } sampled ? $"Poisson-sampled at q = {sampled.SampleRate}" : $"{scenario.ResolvedSampled} sampled")} per round), {scenario.Data.Source} data partitioned `{scenario.Data.Partition}`, model `{scenario.Model}`, strategy `{scenario.Strategy.Name}`, " +
            $"{scenario.Training.Optimizer} lr {scenario.Training.LearningRate} momentum {scenario.Training.Momentum}, batch {scenario.Training.BatchSize}, {scenario.Training.Epochs} local epoch(s), {scenario.Rounds} rounds, seed {scenario.Seed}, mode {scenario.Mode}.");
        report.AppendLine();
        if (partition is { } split)
        {
            report.AppendLine(CultureInfo.InvariantCulture,
                $"- partition `{split.Spec}` ([partition.csv](partition.csv), [partition.png](partition.png)): {split.Samples.Min:0}–{split.Samples.Max:0} samples a client (median {split.Samples.Median:0.#}), " +
                $"{split.LabelsPerClient.Min:0}–{split.LabelsPerClient.Max:0} of {split.Classes} labels a client (median {split.LabelsPerClient.Median:0.#}), the most frequent label {split.TopLabelShare.Min:P0}–{split.TopLabelShare.Max:P0} of a client's samples (median {split.TopLabelShare.Median:P0}){(split.Unassigned > 0 ? $"; {split.Unassigned} samples held by no client" : "")}");
        }

        report.AppendLine(CultureInfo.InvariantCulture, $"- final accuracy: **{summary.FinalAccuracy:P2}** (best {summary.BestAccuracy:P2})");
        report.AppendLine(CultureInfo.InvariantCulture, $"- wall time: {wallSeconds:F1} s ({summary.MeanRoundS:F2} s a round on average); peak RSS {peakRssMb:F0} MB");
        report.AppendLine(CultureInfo.InvariantCulture, $"- bytes up / down: {summary.BytesUp / 1e6:F1} / {summary.BytesDown / 1e6:F1} MB; dropped results: {summary.Dropped}");
        if (summary.Privacy is { } privacy)
        {
            report.AppendLine(CultureInfo.InvariantCulture,
                $"- differential privacy: final **ε = {privacy.FinalEpsilon:G4}** at δ = {privacy.Delta:G3} (Poisson rate q = {privacy.SampleRate}, clip {scenario.Privacy!.Clip}{(scenario.Privacy.Adaptive is null ? "" : ", adaptive")}{(privacy.Budget is { } b ? $", budget {b}" : "")}){(privacy.StoppedByBudget ? "; the budget stopped the run" : "")}");
        }

        if (summary.VirtualS is { } virtualSeconds)
        {
            report.AppendLine(CultureInfo.InvariantCulture,
                $"- virtual clock ({summary.Mode}): {virtualSeconds:F0} virtual s in all; 85 % accuracy {(summary.VirtualSToAccuracy85 is { } t ? $"reached at **{t:F0} virtual s**" : "not reached")}{(summary.RejectedStale is { } stale ? $"; {stale} updates rejected as stale" : "")}");
        }

        if (summary.Aggregator is { } aggregator)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"- robust aggregation: `{aggregator}`");
        }

        if (attack is not null)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"- attack: **{attack.Description}**, {attackers.Count} of {scenario.Clients} clients: {string.Join(", ", attackers)}");
        }

        if (summary.LocalAccuracy is { } last)
        {
            report.AppendLine(CultureInfo.InvariantCulture,
                $"- per-agent local test accuracy (last round with one, {last.Count} agents): mean **{last.Mean:P2}** ± {last.Std * 100:F2} pt (min {last.Min:P2}, p10 {last.P10:P2}, median {last.Median:P2}, max {last.Max:P2})");
        }

        if (final is not null)
        {
            var share = final.PredictedShare;
            var top = final.MostPredictedClass;
            report.AppendLine(CultureInfo.InvariantCulture,
                $"- the final model class by class (round {final.Round}; the table below, or `federated-sim evaluate` on this folder): its predictions fall on **{final.ClassesPredicted} of {share.Length}** classes, class {top} takes {share[top]:P1} of them");
        }

        report.AppendLine(CultureInfo.InvariantCulture, $"- rejected updates: {summary.Rejected}; failed rounds (model kept): {summary.FailedRounds}");
        if (pool is not null)
        {
            report.AppendLine(CultureInfo.InvariantCulture,
                $"- virtual clients: at most **{pool.MaxHeld}** agents in memory at once (pool of {pool.Capacity}); {pool.Materialized} agent materialisations from disk, {pool.FailedStarts} failed starts");
        }

        report.AppendLine();
        report.AppendLine("| round | accuracy | loss | participants | dropped | rejected | duration s | slowest training s | up MB | down MB |" + (hasEpsilon ? " ε |" : ""));
        report.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + (hasEpsilon ? "---:|" : ""));
        foreach (var r in rounds)
        {
            var epsilon = hasEpsilon ? string.Create(CultureInfo.InvariantCulture, $" {r.Epsilon:G4} |") : "";
            report.AppendLine(CultureInfo.InvariantCulture, $"| {r.Round}{(r.Ok ? "" : " (failed)")} | {r.Accuracy:P2} | {r.Loss:F4} | {r.Participants} | {r.Dropped} | {r.Rejected} | {r.DurationS:F2} | {r.SlowestTrainS:F2} | {r.BytesUp / 1e6:F2} | {r.BytesDown / 1e6:F2} |{epsilon}");
        }

        if (hasLocal)
        {
            report.AppendLine();
            report.AppendLine("Per-agent local test accuracy (each agent's held-out split, stratified like its partition; the model it uses when the round's task arrives):");
            report.AppendLine();
            report.AppendLine("| round | agents | mean | std | min | p10 | median | max |");
            report.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in rounds.Where(r => r.LocalAccuracy is not null))
            {
                var l = r.LocalAccuracy!;
                report.AppendLine(CultureInfo.InvariantCulture, $"| {r.Round} | {l.Count} | {l.Mean:P2} | {l.Std * 100:F2} pt | {l.Min:P2} | {l.P10:P2} | {l.Median:P2} | {l.Max:P2} |");
            }
        }

        if (final is not null && final.Result.ConfusionMatrix.Length <= MaxClassRows)
        {
            report.AppendLine();
            report.AppendLine(CultureInfo.InvariantCulture, $"The final model (round {final.Round}) class by class:");
            report.AppendLine();
            report.AppendLine("| class | test samples | accuracy | share of predictions |");
            report.AppendLine("|---:|---:|---:|---:|");
            var perClass = final.Result.PerClassAccuracy;
            for (var c = 0; c < perClass.Length; c++)
            {
                report.AppendLine(CultureInfo.InvariantCulture,
                    $"| {c} | {final.Result.ConfusionMatrix[c].Sum()} | {(double.IsNaN(perClass[c]) ? "–" : perClass[c].ToString("P2", CultureInfo.InvariantCulture))} | {final.PredictedShare[c]:P1} |");
            }
        }

        report.AppendLine();
        report.AppendLine("![accuracy](accuracy.png) ![loss](loss.png) ![bytes](bytes.png)");
        File.WriteAllText(Path.Combine(runDirectory, "report.md"), report.ToString());
    }

    /// <summary>
    /// The accuracy matrix of a continual run: row i is the global model's per-experience accuracy after the round in
    /// which the last agent ends experience i (round (i + 1) × roundsPerExperience + (clients − 1) × stagger), so
    /// the figures are those of <see cref="Learning.Continual.AccuracyMatrix"/>; null without a continual section.
    /// </summary>
    public static ContinualSummary? Continual(Scenario scenario, IReadOnlyList<RoundRecord> rounds)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(rounds);
        if (scenario.Continual is not { } continual)
        {
            return null;
        }

        var count = continual.Count;
        var boundaries = Enumerable.Range(0, count).Select(i => ((i + 1) * continual.RoundsPerExperience) + ((scenario.Clients - 1) * continual.Stagger)).ToArray();
        var rows = boundaries.Select(b => rounds.FirstOrDefault(r => r.Round == b)?.ExperienceAccuracy).ToArray();
        double[][]? matrix = null;
        double? average = null;
        double? forgetting = null;
        if (rows.All(r => r is not null && r.Count == count))
        {
            matrix = rows.Select(r => r!.ToArray()).ToArray();
            var figures = Learning.Continual.AccuracyMatrix.FromRows(matrix);
            average = figures.AverageAccuracy();
            forgetting = figures.Forgetting();
        }

        return new ContinualSummary(continual.Stream, continual.Methods, continual.ConsolidateFisher, boundaries, matrix, average, forgetting);
    }

    private static void Plot(string path, string title, string yLabel, double[] x, double[] y, string? label = null, double[]? y2 = null, string? label2 = null)
    {
        var plot = new ScottPlot.Plot();
        var first = plot.Add.Scatter(x, y);
        if (label is not null)
        {
            first.LegendText = label;
        }

        if (y2 is not null)
        {
            var second = plot.Add.Scatter(x, y2);
            second.LegendText = label2 ?? "";
            plot.ShowLegend();
        }

        plot.Title(title);
        plot.XLabel("round");
        plot.YLabel(yLabel);
        plot.SavePng(path, 640, 400);
    }
}

/// <summary>The attack of a run, as summary.json records it.</summary>
/// <param name="Kind">The attack kind.</param>
/// <param name="Fraction">The scenario's attacker fraction.</param>
/// <param name="Description">What the attackers send, e.g. <c>signflip scale 4 from round 1</c>.</param>
/// <param name="Attackers">The attacking agents' ids.</param>
public sealed record AttackSummary(string Kind, double Fraction, string Description, IReadOnlyList<string> Attackers);
