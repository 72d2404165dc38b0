using System.Globalization;
using System.Text;
using Federated.Client.Hosting;
using Federated.Client.Training;
using Microsoft.Extensions.Configuration;

namespace Federated.Simulations.Scenarios;

/// <summary>The spread of a per-client count over the clients.</summary>
/// <param name="Min">The smallest.</param>
/// <param name="Median">The median.</param>
/// <param name="Max">The largest.</param>
public sealed record CountSpread(double Min, double Median, double Max)
{
    /// <summary>The spread of <paramref name="values"/> (at least one).</summary>
    public static CountSpread Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return new CountSpread(sorted[0], sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2, sorted[^1]);
    }
}

/// <summary>How the scenario's partition spread the data: the figures summary.json and report.md give.</summary>
/// <param name="Spec">The partition spec (e.g. <c>dirichlet:0.5</c>).</param>
/// <param name="Clients">Clients.</param>
/// <param name="Classes">Classes of the data set.</param>
/// <param name="Samples">Samples a client holds.</param>
/// <param name="LabelsPerClient">Distinct labels a client holds.</param>
/// <param name="TopLabelShare">The share of a client's samples that its most frequent label takes.</param>
/// <param name="Unassigned">Samples of the data set that no client holds (a cap, or a partitioner that leaves some out).</param>
public sealed record PartitionSummary(string Spec, int Clients, int Classes, CountSpread Samples, CountSpread LabelsPerClient, CountSpread TopLabelShare, long Unassigned);

/// <summary>
/// The label histogram of every client's share of the data, computed with the agents' own code (the same source,
/// partitioner, seed and cap as <see cref="LocalDataLoader.SelectIndices"/>), written as <c>partition.csv</c> and
/// <c>partition.png</c> (stacked bars, one per client, as Flower Datasets plots label distributions). The share is the
/// agent's whole partition; an agent with a local test split trains on the rest of it, stratified alike.
/// </summary>
public static class PartitionReport
{
    /// <summary>Clients drawn in <c>partition.png</c> at most (the first ones); <c>partition.csv</c> holds all.</summary>
    public const int MaxPlottedClients = 100;

    /// <summary>[client][label] sample counts of the scenario's partition, and the samples of the data set it split.</summary>
    public static (int[][] Histograms, long DatasetSamples) Histograms(Scenario scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var settings = FederationPlan.Agent(scenario, 0, "http://127.0.0.1:1", Path.GetTempPath());
        var options = new ConfigurationBuilder().AddInMemoryCollection(settings!).Build()
            .GetSection(ClientOptions.Section).Get<ClientOptions>()?.Data ?? new ClientDataOptions();
        var source = LocalDataLoader.OpenSource(options);
        var labels = source.Labels.ToArray();
        var histograms = LocalDataLoader.SelectAllIndices(source, options)
            .Select(indices =>
            {
                var histogram = new int[source.NumClasses];
                foreach (var index in indices)
                {
                    histogram[labels[index]]++;
                }

                return histogram;
            })
            .ToArray();
        return (histograms, labels.Length);
    }

    /// <summary>The summary of <paramref name="histograms"/>.</summary>
    public static PartitionSummary Summarize(string spec, IReadOnlyList<int[]> histograms, long datasetSamples)
    {
        ArgumentNullException.ThrowIfNull(histograms);
        var samples = histograms.Select(h => (double)h.Sum()).ToArray();
        return new PartitionSummary(
            spec,
            histograms.Count,
            histograms.Count > 0 ? histograms[0].Length : 0,
            CountSpread.Of(samples),
            CountSpread.Of(histograms.Select(h => (double)h.Count(n => n > 0))),
            CountSpread.Of(histograms.Select((h, i) => samples[i] > 0 ? h.Max() / samples[i] : 0)),
            datasetSamples - (long)samples.Sum());
    }

    /// <summary>Computes the partition and writes <c>partition.csv</c> and <c>partition.png</c> into <paramref name="runDirectory"/>.</summary>
    public static PartitionSummary Write(Scenario scenario, string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var (histograms, datasetSamples) = Histograms(scenario);
        var csv = new StringBuilder("client,samples");
        var classes = histograms[0].Length;
        csv.Append(string.Concat(Enumerable.Range(0, classes).Select(l => string.Create(CultureInfo.InvariantCulture, $",label_{l}")))).Append('\n');
        for (var c = 0; c < histograms.Length; c++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{c},{histograms[c].Sum()}");
            csv.Append(string.Concat(histograms[c].Select(n => string.Create(CultureInfo.InvariantCulture, $",{n}")))).Append('\n');
        }

        File.WriteAllText(Path.Combine(runDirectory, "partition.csv"), csv.ToString());
        Plot(Path.Combine(runDirectory, "partition.png"), scenario.Data.Partition, histograms);
        return Summarize(scenario.Data.Partition, histograms, datasetSamples);
    }

    private static void Plot(string path, string spec, int[][] histograms)
    {
        var shown = Math.Min(histograms.Length, MaxPlottedClients);
        var classes = histograms[0].Length;
        var palette = new ScottPlot.Palettes.Category10();
        var plot = new ScottPlot.Plot();
        var bars = new List<ScottPlot.Bar>();
        for (var c = 0; c < shown; c++)
        {
            double bottom = 0;
            for (var l = 0; l < classes; l++)
            {
                if (histograms[c][l] == 0)
                {
                    continue;
                }

                bars.Add(new ScottPlot.Bar { Position = c, ValueBase = bottom, Value = bottom + histograms[c][l], FillColor = palette.GetColor(l), LineWidth = 0 });
                bottom += histograms[c][l];
            }
        }

        plot.Add.Bars(bars);
        if (classes <= 20)
        {
            for (var l = 0; l < classes; l++)
            {
                plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = string.Create(CultureInfo.InvariantCulture, $"label {l}"), FillColor = palette.GetColor(l) });
            }

            plot.ShowLegend(ScottPlot.Edge.Right);
        }

        plot.Title(shown < histograms.Length
            ? string.Create(CultureInfo.InvariantCulture, $"Labels per client ({spec}): clients 0–{shown - 1} of {histograms.Length}")
            : $"Labels per client ({spec})");
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.XLabel("client");
        plot.YLabel("samples");
        plot.Axes.Margins(bottom: 0);
        plot.SavePng(path, 800, 400);
    }
}
