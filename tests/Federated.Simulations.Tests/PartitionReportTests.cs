using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>The partition figures of a run folder, computed with the agents' own data code.</summary>
public sealed class PartitionReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-partition-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Scenario Synthetic(string partition, int clients)
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Data.Partition = partition;
        scenario.Clients = clients;
        return scenario;
    }

    [Fact]
    public void Histograms_OneShardPerClient_GiveEachClientOneLabelOfItsOwn()
    {
        var (histograms, samples) = PartitionReport.Histograms(Synthetic("shards:1", 4));

        Assert.Equal(600, samples);
        Assert.Equal(4, histograms.Length);
        Assert.All(histograms, h => Assert.Single(h, n => n > 0));
        Assert.Equal(4, histograms.Select(h => Array.FindIndex(h, n => n > 0)).Distinct().Count());
        var summary = PartitionReport.Summarize("shards:1", histograms, samples);
        Assert.Equal(new CountSpread(1, 1, 1), summary.LabelsPerClient);
        Assert.Equal(new CountSpread(1, 1, 1), summary.TopLabelShare);
        Assert.Equal(0, summary.Unassigned);
    }

    [Fact]
    public void Histograms_Iid_SpreadEveryLabelOverEveryClient()
    {
        var (histograms, samples) = PartitionReport.Histograms(Synthetic("iid", 3));

        var summary = PartitionReport.Summarize("iid", histograms, samples);
        Assert.Equal(new CountSpread(4, 4, 4), summary.LabelsPerClient);
        Assert.Equal(new CountSpread(200, 200, 200), summary.Samples);
        Assert.InRange(summary.TopLabelShare.Max, 0.25, 0.40);
    }

    [Fact]
    public void Histograms_MatchWhatEachAgentLoads_WithTheCap()
    {
        var scenario = Synthetic("dirichlet:0.3", 5);
        scenario.Data.MaxExamplesPerClient = 50;

        var (histograms, samples) = PartitionReport.Histograms(scenario);

        Assert.All(histograms, h => Assert.InRange(h.Sum(), 1, 50));
        Assert.Equal(samples - histograms.Sum(h => h.Sum()), PartitionReport.Summarize("dirichlet:0.3", histograms, samples).Unassigned);
    }

    [Fact]
    public void Write_PutsOneCsvRowPerClient_AndAPlot()
    {
        var summary = PartitionReport.Write(Synthetic("shards:1", 4), _dir);

        var lines = File.ReadAllLines(Path.Combine(_dir, "partition.csv"));
        Assert.Equal("client,samples,label_0,label_1,label_2,label_3", lines[0]);
        Assert.Equal(5, lines.Length);
        Assert.All(lines.Skip(1), l => Assert.Equal(150, int.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(0x89, File.ReadAllBytes(Path.Combine(_dir, "partition.png"))[0]);
        Assert.Equal(4, summary.Clients);
    }

    [Fact]
    public void CountSpread_MedianOfAnEvenCount_IsTheMeanOfTheMiddleTwo()
    {
        Assert.Equal(new CountSpread(1, 2.5, 9), CountSpread.Of([9, 1, 2, 3]));
        Assert.Equal(new CountSpread(1, 2, 9), CountSpread.Of([9, 1, 2]));
    }
}
