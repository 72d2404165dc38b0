using Federated.Client.Agent;
using Federated.Client.Attacks;
using Federated.Client.State;
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
}
