using Federated.Coordinator.Agents;
using Federated.Coordinator.Dashboard;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.Runs;
using Federated.Coordinator.Security;
using Federated.Coordinator.Services;
using Federated.Coordinator.State;
using Federated.Coordinator.Telemetry;
using Federated.Coordinator.Transfers;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Federated.Coordinator.Hosting;

/// <summary>Registers the coordinator's services.</summary>
public static class CoordinatorServiceCollectionExtensions
{
    /// <summary>
    /// Adds the coordinator: options (validated on start), the state store, agents (their enrolments restored from the
    /// store when the run resumes), transfers, the round loop, metrics and gRPC.
    /// </summary>
    public static IServiceCollection AddFederatedCoordinator(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CoordinatorOptions>()
            .Bind(configuration.GetSection(CoordinatorOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<CoordinatorOptions>, CoordinatorOptionsValidator>();
        var secureAggregationRefusal = AsynchronousModeRules.RefuseSecureAggregation(configuration);
        services.AddOptions<CoordinatorOptions>().Validate(_ => secureAggregationRefusal is null, secureAggregationRefusal ?? "");
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
        services.AddSingleton<IRoundStateStore>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            return o.Store == "file"
                ? new FileRoundStateStore(o.StateDirectory)
                : new SqliteRoundStateStore(o.StateDirectory, o.ResolvedDatabaseFile, sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            var store = sp.GetRequiredService<IRoundStateStore>();
            var time = sp.GetRequiredService<TimeProvider>();
            var registry = new AgentRegistry(time);
            if (o.Resume)
            {
                foreach (var agent in store.LoadAgents())
                {
                    registry.Restore(agent.AgentId, agent.TokenSha256, Protocol.V1.Capabilities.Parser.ParseFrom(agent.Capabilities), agent.EnrolledUnixMs);
                }
            }

            // Recorded before the enrolment's reply leaves: an agent holding a token is an agent the store knows.
            registry.Enrolled += record => store.SaveAgent(new AgentEnrolment(
                record.Id, record.TokenSha256, record.Capabilities.ToByteArray(), record.EnrolledUnixMs, time.GetUtcNow().ToUnixTimeMilliseconds()));
            return registry;
        });
        services.TryAddSingleton<IAgentActivator, PassiveAgentActivator>();
        services.AddSingleton<TransferHub>();
        services.AddSingleton<RoundEvents>();
        services.AddSingleton<RunStatus>();
        services.AddSingleton<RoundHistory>();
        services.AddSingleton<DashboardStateBuilder>();
        services.AddSingleton<ServerModel>();
        services.AddMetrics();
        services.AddSingleton<CoordinatorMetrics>();
        if (configuration.GetSection(CoordinatorOptions.Section).GetSection(nameof(CoordinatorOptions.Prometheus)).GetValue(nameof(PrometheusSettings.Enabled), true))
        {
            services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(CoordinatorMetrics.MeterName).AddPrometheusExporter());
        }

        services.AddSingleton<VirtualClock>();

        // Runs: the manager restores and serves the submitted ones (started before the configured run's loop, stopped after
        // it) and holds the configured run's control.
        services.AddSingleton(sp =>
        {
            var manager = ActivatorUtilities.CreateInstance<RunManager>(sp);
            manager.History = sp.GetRequiredService<RoundHistory>();
            return manager;
        });
        services.AddHostedService(sp => sp.GetRequiredService<RunManager>());
        services.AddSingleton(sp => sp.GetRequiredService<RunManager>().ConfiguredControl);
        var section = configuration.GetSection(CoordinatorOptions.Section);
        if (section.GetSection(nameof(CoordinatorOptions.Runs)).GetValue(nameof(RunsSettings.RunOnStart), true))
        {
            if (string.Equals(section[nameof(CoordinatorOptions.Mode)]?.Trim(), "fedbuff", StringComparison.OrdinalIgnoreCase))
            {
                services.AddHostedService<AsyncRunner>();
            }
            else
            {
                services.AddHostedService<RoundRunner>();
            }
        }

        return services;
    }

    /// <summary>The coordinator service's full gRPC name (also a service name the health service answers for).</summary>
    public const string ServiceName = "federated.v1.Coordinator";

    /// <summary>
    /// Maps the coordinator's gRPC services, the health service, reflection (unless <c>Coordinator:Security:Reflection</c>
    /// is false) and, when enabled, the Prometheus scraping endpoint and the dashboard.
    /// </summary>
    public static IEndpointRouteBuilder MapFederatedCoordinator(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGrpcService<CoordinatorService>();
        endpoints.MapGrpcService<AdminService>();
        endpoints.MapGrpcHealthChecksService();
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
        if (options.Security.Reflection)
        {
            endpoints.MapGrpcReflectionService();
        }

        var prometheus = options.Prometheus;
        if (prometheus.Enabled)
        {
            var scrape = endpoints.MapPrometheusScrapingEndpoint(prometheus.Path);
            if (prometheus.Url.Length > 0)
            {
                // Only on the scrapers' own address.
                scrape.RequireHost($"*:{new Uri(prometheus.Url).Port}");
            }
        }

        endpoints.MapFederatedDashboard();
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
