using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Federated.Simulations.Grid;

/// <summary>What the robustness table needs from one run folder's <c>summary.json</c>.</summary>
/// <param name="Run">The run folder's name.</param>
/// <param name="Partition">The data partition, e.g. <c>iid</c> or <c>dirichlet:0.5</c>.</param>
/// <param name="Aggregator">The robust aggregator's specification; null for plain FedAvg.</param>
/// <param name="Attack">The attack kind; null for a clean run.</param>
/// <param name="Description">What the attackers sent, e.g. <c>signflip scale 5 from round 1</c> (empty when clean).</param>
/// <param name="Fraction">The attacker fraction (0 when clean).</param>
/// <param name="FinalAccuracy">The last round's test accuracy.</param>
/// <param name="Rejected">Updates the coordinator did not aggregate over the run.</param>
/// <param name="FailedRounds">Rounds that kept the model.</param>
public sealed record GridRun(string Run, string Partition, string? Aggregator, string? Attack, string Description, double Fraction, double FinalAccuracy, int Rejected, int FailedRounds)
{
    /// <summary>Reads <paramref name="summaryPath"/> (a run folder's summary.json).</summary>
    /// <exception cref="InvalidDataException">Not a run summary.</exception>
    public static GridRun Read(string summaryPath)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(summaryPath));
            var root = document.RootElement;
            string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            double Number(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN;
            var attack = root.TryGetProperty("attack", out var a) && a.ValueKind == JsonValueKind.Object ? a : (JsonElement?)null;
            return new GridRun(
                Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(summaryPath)))!,
                Text(root, "partition") ?? "?",
                Text(root, "aggregator"),
                attack is { } k ? Text(k, "kind") : null,
                attack is { } d ? Text(d, "description") ?? "" : "",
                attack is { } f ? Number(f, "fraction") : 0,
                Number(root, "final_accuracy"),
                double.IsNaN(Number(root, "rejected")) ? 0 : (int)Number(root, "rejected"),
                double.IsNaN(Number(root, "failed_rounds")) ? 0 : (int)Number(root, "failed_rounds"));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{summaryPath}' is not a run summary: {e.Message}", e);
        }
    }

    /// <summary>The aggregator family the table's columns are: fedavg, median, trimmed_mean, multikrum, … (the first stage's rule).</summary>
    public string Family => Aggregator is null ? "fedavg" : Aggregator.Split('>')[0].Split(':')[0].Trim() switch
    {
        "rfa" => "geometric_median",
        "cclip" => "centered_clipping",
        var name => name,
    };
}

/// <summary>
/// The robustness grid's markdown: per partition, one row per attack and attacker fraction, one column per aggregator
/// family, each cell the final test accuracy, beside the clean FedAvg run of that partition; the last column is the
/// best robust aggregator minus clean, in points.
/// </summary>
public static class ResultsTable
{
    private static readonly string[] Families = ["fedavg", "median", "trimmed_mean", "multikrum", "krum", "bulyan", "geometric_median", "centered_clipping", "norm_bound", "bucketing", "mean"];

    private static readonly Dictionary<string, string> Titles = new(StringComparer.Ordinal)
    {
        ["fedavg"] = "FedAvg",
        ["median"] = "median",
        ["trimmed_mean"] = "trimmed mean",
        ["multikrum"] = "Multi-Krum",
        ["krum"] = "Krum",
        ["bulyan"] = "Bulyan",
        ["geometric_median"] = "geometric median",
        ["centered_clipping"] = "centred clipping",
        ["norm_bound"] = "norm bound",
        ["bucketing"] = "bucketing + …",
        ["mean"] = "validated mean",
    };

    /// <summary>Every <c>*/summary.json</c> one level below <paramref name="directory"/>, by run name.</summary>
    public static IReadOnlyList<GridRun> ReadAll(string directory) =>
        Directory.EnumerateDirectories(directory)
            .Select(d => Path.Combine(d, "summary.json"))
            .Where(File.Exists)
            .Select(GridRun.Read)
            .OrderBy(r => r.Run, StringComparer.Ordinal)
            .ToList();

    /// <summary>The markdown tables for <paramref name="runs"/>.</summary>
    public static string Markdown(IReadOnlyList<GridRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var ci = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        foreach (var partition in runs.Select(r => r.Partition).Distinct().Order(StringComparer.Ordinal))
        {
            var inPartition = runs.Where(r => r.Partition == partition).ToList();
            var clean = inPartition.FirstOrDefault(r => r.Attack is null && r.Family == "fedavg");
            var families = Families.Where(f => inPartition.Any(r => r.Attack is not null && r.Family == f)).ToList();
            text.AppendLine(ci, $"Partition `{partition}`; clean FedAvg: **{Percent(clean?.FinalAccuracy)}**{(clean is null ? " (no clean run)" : "")}.");
            text.AppendLine();
            text.Append("| attack | attackers |");
            foreach (var family in families)
            {
                text.Append(ci, $" {Titles.GetValueOrDefault(family, family)} |");
            }

            text.AppendLine(" best robust − clean |");
            text.Append("|---|---:|");
            text.Append(string.Concat(Enumerable.Repeat("---:|", families.Count + 1)));
            text.AppendLine();
            var rows = inPartition.Where(r => r.Attack is not null)
                .GroupBy(r => (r.Attack!, r.Fraction))
                .OrderBy(g => Array.IndexOf(AttackOrder, g.Key.Item1) is var i && i < 0 ? int.MaxValue : i)
                .ThenBy(g => g.Key.Item1, StringComparer.Ordinal)
                .ThenBy(g => g.Key.Fraction);
            foreach (var row in rows)
            {
                var description = row.Select(r => r.Description).FirstOrDefault(d => d.Length > 0) ?? row.Key.Item1;
                text.Append(ci, $"| {Trim(description)} | {row.Key.Fraction:P0} |");
                foreach (var family in families)
                {
                    var run = row.FirstOrDefault(r => r.Family == family);
                    text.Append(ci, $" {(run is null ? "–" : Cell(run))} |");
                }

                var best = row.Where(r => r.Family != "fedavg" && double.IsFinite(r.FinalAccuracy)).Select(r => r.FinalAccuracy).DefaultIfEmpty(double.NaN).Max();
                text.AppendLine(ci, $" {(clean is null || double.IsNaN(best) ? "–" : ((best - clean.FinalAccuracy) * 100).ToString("+0.0;−0.0;0.0", ci))} |");
            }

            text.AppendLine();
            var specifications = inPartition.Where(r => r.Aggregator is not null).Select(r => (r.Family, r.Aggregator!)).Distinct().OrderBy(s => Array.IndexOf(Families, s.Family)).ThenBy(s => s.Item2, StringComparer.Ordinal);
            text.AppendLine(ci, $"Aggregators: {string.Join("; ", specifications.Select(s => $"`{s.Item2}`"))}. A cell is the final test accuracy; `r N` counts updates the coordinator rejected over the run, `f N` rounds that failed and kept the model.");
            text.AppendLine();
        }

        return text.ToString();
    }

    private static readonly string[] AttackOrder = ["signflip", "scaling", "noise", "labelflip", "zero", "alie", "ipm"];

    private static string Trim(string description) => description.Replace(" from round 1", "", StringComparison.Ordinal);

    private static string Cell(GridRun run)
    {
        var notes = new List<string>();
        if (run.Rejected > 0)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"r {run.Rejected}"));
        }

        if (run.FailedRounds > 0)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"f {run.FailedRounds}"));
        }

        return notes.Count == 0 ? Percent(run.FinalAccuracy) : $"{Percent(run.FinalAccuracy)} ({string.Join(", ", notes)})";
    }

    private static string Percent(double? value) => value is { } v && double.IsFinite(v) ? (v * 100).ToString("F1", CultureInfo.InvariantCulture) : "–";
}
