using Federated.Coordinator.Services;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Hosting;

/// <summary>Registers the coordinator's services.</summary>
public static class CoordinatorServiceCollectionExtensions
{
    /// <summary>Adds the coordinator, its options (validated on start) and gRPC.</summary>
    public static IServiceCollection AddFederatedCoordinator(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CoordinatorOptions>()
            .Bind(configuration.GetSection(CoordinatorOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IConfigureOptions<Grpc.AspNetCore.Server.GrpcServiceOptions>, ConfigureGrpcLimits>();
        services.AddGrpc();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<CoordinatorClock>();
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
        public void Configure(Grpc.AspNetCore.Server.GrpcServiceOptions grpc) =>
            grpc.MaxReceiveMessageSize = options.Value.MaxReceiveMessageBytes;
    }
}
