using Federated.Client.Hosting;
using Federated.Learning.Data;

namespace Federated.Client.Training;

/// <summary>
/// An application's own data source for the agent (bring your own data). Registered with
/// <see cref="ClientServiceCollectionExtensions.AddFederatedDataSource(IServiceCollection, Func{ClientDataOptions, ILabelledSource})"/>,
/// which also sets <c>Client:Data:Source</c> to <c>custom</c>. The agent partitions what <see cref="Open"/> returns like
/// any other source (<c>Client:Data:Partition</c>, <c>Index</c>, <c>Clients</c>, <c>MaxExamples</c>), then normalises
/// it as <c>Client:Data:Normalization</c> says.
/// </summary>
public interface IDataSourceProvider
{
    /// <summary>Opens the whole data set the agent's share is taken from; called once, when the agent starts.</summary>
    ILabelledSource Open(ClientDataOptions options);
}

/// <summary>A data source provider over a delegate.</summary>
internal sealed class DelegateDataSourceProvider(Func<ClientDataOptions, ILabelledSource> open) : IDataSourceProvider
{
    public ILabelledSource Open(ClientDataOptions options) => open(options);
}
