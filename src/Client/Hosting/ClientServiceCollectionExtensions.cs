using Federated.Client.Agent;
using Federated.Client.Attacks;
using Federated.Client.Middleware;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Learning.Data;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Federated.Client.Hosting;

/// <summary>Registers the client agent's services.</summary>
public static class ClientServiceCollectionExtensions
{
    /// <summary>
    /// Binds and validates <see cref="ClientOptions"/> and adds the agent worker and its collaborators. A simulator that
    /// hosts the agents in-process may register its own <see cref="IColludingChannel"/> first (the default is none).
    /// </summary>
    public static IServiceCollection AddFederatedClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ClientOptions>()
            .Bind(configuration.GetSection(ClientOptions.Section))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClientOptions>, ClientOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IColludingChannel>(NoColludingChannel.Instance);
        services.TryAddSingleton(sp => new AgentStateStore(
            sp.GetRequiredService<IOptions<ClientOptions>>().Value.StateDirectory,
            sp.GetRequiredService<ILogger<AgentStateStore>>()));
        services.TryAddSingleton<AgentStatusReporter>();
        services.AddHostedService<AgentWorker>();
        return services;
    }

    /// <summary>
    /// Adds client middleware <typeparamref name="T"/> (a singleton): it sees every update after local training and
    /// before upload. Middleware runs in the order it was added.
    /// </summary>
    public static IServiceCollection AddUpdateMiddleware<T>(this IServiceCollection services)
        where T : class, IUpdateMiddleware
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton<IUpdateMiddleware, T>();
        return services;
    }

    /// <summary>
    /// Makes the agent train on the data <paramref name="open"/> returns instead of a configured source, and sets
    /// <c>Client:Data:Source</c> to <c>custom</c>. The agent's share is still chosen by <c>Client:Data:Partition</c>,
    /// <c>Index</c> and <c>Clients</c>. Every sample must have the same shape and a label in [0, NumClasses).
    /// </summary>
    public static IServiceCollection AddFederatedDataSource(this IServiceCollection services, Func<ClientDataOptions, ILabelledSource> open)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(open);
        services.AddSingleton<IDataSourceProvider>(new DelegateDataSourceProvider(open));
        services.PostConfigure<ClientOptions>(o => o.Data.Source = ClientDataOptions.CustomSource);
        return services;
    }
}
