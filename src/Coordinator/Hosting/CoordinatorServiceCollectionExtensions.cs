using Federated.Coordinator.Agents;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.Security;
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
        services.AddGrpc(grpc => grpc.Interceptors.Add<TransportSecurityInterceptor>());
        services.AddGrpcReflection();
        services.AddGrpcHealthChecks(health => health.Services.Map(ServiceName, _ => true))
            .AddCheck<CoordinatorReadiness>("coordinator");
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            return new AgentKeyStore(Path.Combine(o.StateDirectory, o.Security.AgentsFile), sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton<ChallengeBook>();
        services.AddSingleton<EnrolmentRateLimiter>();
        services.AddSingleton<EnrolmentGate>();
        services.AddSingleton<RevocationWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<RevocationWatcher>());
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

    /// <summary>The coordinator service's full gRPC name (also a service name the health service answers for).</summary>
    public const string ServiceName = "federated.v1.Coordinator";

    /// <summary>Maps the coordinator's gRPC services, the health service and (unless <c>Coordinator:Security:Reflection</c> is false) reflection.</summary>
    public static IEndpointRouteBuilder MapFederatedCoordinator(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGrpcService<CoordinatorService>();
        endpoints.MapGrpcHealthChecksService();
        if (endpoints.ServiceProvider.GetRequiredService<IOptions<CoordinatorOptions>>().Value.Security.Reflection)
        {
            endpoints.MapGrpcReflectionService();
        }

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
