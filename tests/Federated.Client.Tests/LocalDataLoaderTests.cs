using Federated.Client.Hosting;
using Federated.Client.Middleware;
using Federated.Client.Training;
using Federated.Learning.Data;
using Federated.Protocol.V1;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
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
    public void SelectAllIndices_GivesEveryAgentWhatSelectIndicesGivesIt()
    {
        var source = LocalDataLoader.OpenSource(Synthetic(0, maxExamples: 60));

        var all = LocalDataLoader.SelectAllIndices(source, Synthetic(0, maxExamples: 60, partition: "dirichlet:0.5"));

        Assert.Equal(10, all.Length);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(LocalDataLoader.SelectIndices(source, Synthetic(i, maxExamples: 60, partition: "dirichlet:0.5")), all[i]);
        }
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

    private sealed class Provider(ILabelledSource source) : IDataSourceProvider
    {
        public ILabelledSource Open(ClientDataOptions options) => source;
    }

    [Fact]
    public void Load_CustomSource_TakesTheAgentsShareOfTheProvidersData()
    {
        var features = Enumerable.Range(0, 40 * 4).Select(i => (float)i).ToArray();
        var labels = Enumerable.Range(0, 40).Select(i => i % 2).ToArray();
        var source = new InMemorySource("mine", features, labels, [1, 2, 2], 2);
        var options = new ClientDataOptions { Source = ClientDataOptions.CustomSource, Normalization = "none", Clients = 4, Index = 1 };

        using var data = LocalDataLoader.Load(options, torch.CPU, new Provider(source));

        Assert.Equal(10, data.Count);
        Assert.Equal(2, data.NumClasses);
        Assert.StartsWith("mine", data.Name, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CustomSourceWithoutProvider_SaysToRegisterOne()
    {
        var options = new ClientDataOptions { Source = ClientDataOptions.CustomSource };

        var error = Assert.Throws<InvalidOperationException>(() => LocalDataLoader.Load(options, torch.CPU));

        Assert.Contains("AddFederatedDataSource", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddFederatedDataSource_SetsTheSourceToCustomAndRegistersTheProvider()
    {
        var services = new ServiceCollection();
        services.AddFederatedDataSource(_ => new InMemorySource("mine", new float[4], [0], [1, 2, 2], 1));

        using var provider = services.BuildServiceProvider();

        Assert.Equal(ClientDataOptions.CustomSource, provider.GetRequiredService<IOptions<ClientOptions>>().Value.Data.Source);
        Assert.Equal("mine", provider.GetRequiredService<IDataSourceProvider>().Open(new ClientDataOptions()).Name);
    }

    [Fact]
    public void UpdateContext_DeltaReplacedWithAnotherLength_Throws()
    {
        var update = new UpdateContext(new TrainTask { Round = 3 }, new float[5], 10, new Dictionary<string, double>());

        update.Delta = new float[5];
        Assert.Throws<ArgumentException>(() => update.Delta = new float[4]);
        Assert.Equal(3, update.Round);
    }
}
