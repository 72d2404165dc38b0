using System.Net;
using Federated.Client.Hosting;
using Federated.Coordinator.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// The coordinator and every agent as hosts in this process — the shipped coordinator service and client worker,
/// registered exactly as their programs register them — talking real gRPC over HTTP/2 on 127.0.0.1.
/// </summary>
internal static class InProcessFederation
{
    public static async Task RunAsync(Scenario scenario, string runDirectory, CancellationToken cancellationToken)
    {
        var coordinatorLog = new FileLogger(Path.Combine(runDirectory, "coordinator.log"), LogLevel.Information);
        var agentLog = new FileLogger(Path.Combine(runDirectory, "agents.log"), LogLevel.Information);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Simulation", ContentRootPath = runDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(FederationPlan.Coordinator(scenario, Path.Combine(runDirectory, "coordinator")).Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
            k.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
            k.Limits.Http2.InitialStreamWindowSize = 16 * 1024 * 1024;
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(coordinatorLog);
        builder.Services.AddFederatedCoordinator(builder.Configuration);
        var agents = new List<IHost>();
        await using var app = builder.Build();
        try
        {
            app.MapFederatedCoordinator();
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            for (var i = 0; i < scenario.Clients; i++)
            {
                var agentBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Simulation", DisableDefaults = true });
                agentBuilder.Configuration.AddInMemoryCollection(
                    FederationPlan.Agent(scenario, i, address, Path.Combine(runDirectory, $"agent-{i:D4}")).Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
                agentBuilder.Logging.AddProvider(agentLog);
                agentBuilder.Services.AddFederatedClient(agentBuilder.Configuration);
                var agent = agentBuilder.Build();
                await agent.StartAsync(cancellationToken).ConfigureAwait(false);
                agents.Add(agent);
            }

            // The coordinator stops itself after the last round (ExitWhenDone) and tells the agents to shut down.
            await ((IHost)app).WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            foreach (var agent in agents)
            {
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await agent.StopAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                agent.Dispose();
            }

            coordinatorLog.Dispose();
            agentLog.Dispose();
        }
    }
}
