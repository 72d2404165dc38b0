using Federated.Client.Hosting;
using Federated.Client.Training;
using TorchSharp;

namespace Federated.Client.Tests;

public sealed class LocalDataLoaderTests
{
    private static ClientDataOptions Synthetic(int index, int clients = 10, int maxExamples = 0, string partition = "iid") => new()
    {
        Source = "synthetic",
        SyntheticCount = 2000,
        SyntheticClasses = 10,
        Partition = partition,
        Clients = clients,
        Index = index,
        MaxExamples = maxExamples,
        Seed = 5,
    };

    [Fact]
    public void Partitions_HaveTheExpectedSize_AndAreDisjoint()
    {
        var source = LocalDataLoader.OpenSource(Synthetic(0));
        var parts = Enumerable.Range(0, 10).Select(i => LocalDataLoader.SelectIndices(source, Synthetic(i))).ToArray();
        Assert.All(parts, p => Assert.Equal(200, p.Length));
        Assert.Equal(2000, parts.SelectMany(p => p).Distinct().Count());
        Assert.Empty(parts[3].Intersect(parts[4]));
    }

    [Fact]
    public void MaxExamples_KeepsTheFirstNOfThePartition()
    {
        var source = LocalDataLoader.OpenSource(Synthetic(0));
        var full = LocalDataLoader.SelectIndices(source, Synthetic(2));
        var capped = LocalDataLoader.SelectIndices(source, Synthetic(2, maxExamples: 60));
        Assert.Equal(full.Take(60), capped);
        var other = LocalDataLoader.SelectIndices(source, Synthetic(7, maxExamples: 60));
        Assert.Empty(capped.Intersect(other));
        Assert.Equal(200, LocalDataLoader.SelectIndices(source, Synthetic(2, maxExamples: 5000)).Length);
    }

    [Fact]
    public void Load_MaterialisesTheAgentsShare()
    {
        using var data = LocalDataLoader.Load(Synthetic(1, clients: 4, maxExamples: 150, partition: "dirichlet:0.5"), torch.CPU);
        Assert.Equal(150, data.Count);
        Assert.Equal(10, data.NumClasses);
        Assert.Equal(new long[] { 1, 28, 28 }, data.SampleShape);
        Assert.Equal(new long[] { 150, 1, 28, 28 }, data.Features.shape);
    }
}
