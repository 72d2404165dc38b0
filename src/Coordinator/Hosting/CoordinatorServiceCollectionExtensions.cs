using Federated.Coordinator.Agents;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.Services;
using Federated.Coordinator.State;
using Federated.Coordinator.Transfers;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Hosting;

/// <summary>Registers the coordinator's services.</summary>
public static class CoordinatorServiceCollectionExtensions
{
    /// <summary>Adds the coordinator: options (validated on start), agents, transfers, the round loop and gRPC.</summary>
    public static IServiceCollection AddFederatedCoordinator(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CoordinatorOptions>()
            .Bind(configuration.GetSection(CoordinatorOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<CoordinatorOptions>, CoordinatorOptionsValidator>();
        services.AddSingleton<IConfigureOptions<Grpc.AspNetCore.Server.GrpcServiceOptions>, ConfigureGrpcLimits>();
        services.AddGrpc();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<CoordinatorClock>();
        services.AddSingleton<AgentRegistry>();
        services.TryAddSingleton<IAgentActivator, PassiveAgentActivator>();
        services.AddSingleton<TransferHub>();
        services.AddSingleton<RoundEvents>();
        services.AddSingleton<RunStatus>();
        services.AddSingleton<ServerModel>();
        services.AddSingleton<IRoundStateStore>(sp => new FileRoundStateStore(sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value.StateDirectory));
        services.AddHostedService<RoundRunner>();
        return services;
    }

    /// <summary>Maps the coordinator's gRPC services.</summary>
    public static IEndpointRouteBuilder MapFederatedCoordinator(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<CoordinatorService>();
        return endpoints;
    }

    private sealed class ConfigureGrpcLimits(IOptions<CoordinatorOptions> options) : IConfigureOptions<Grpc.AspNetCore.Server.GrpcServiceOptions>
    {
        public void Configure(Grpc.AspNetCore.Server.GrpcServiceOptions grpc)
        {
            grpc.MaxReceiveMessageSize = options.Value.MaxReceiveMessageBytes;
            grpc.MaxSendMessageSize = options.Value.MaxReceiveMessageBytes;
        }
    }
}
