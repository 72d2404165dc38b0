using System.Net;
using Federated.Client.Attacks;
using Federated.Client.Hosting;
using Federated.Coordinator.Agents;
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
/// The coordinator and the agents as hosts in this process — the shipped coordinator service and client worker,
/// registered exactly as their programs register them — talking real gRPC over HTTP/2 on 127.0.0.1. In
/// <c>in-process</c> mode every agent runs for the whole run; in <c>virtual</c> mode a <see cref="VirtualAgentPool"/>
/// materialises only the agents a round samples, and the coordinator samples every enrolled agent.
/// </summary>
internal static class InProcessFederation
{
    /// <summary>
    /// Runs the scenario; returns the virtual pool's figures in virtual mode, null otherwise. <paramref name="coordinatorReady"/>
    /// runs once the coordinator listens, before the agents start.
    /// </summary>
    public static async Task<VirtualPoolStats?> RunAsync(Scenario scenario, string runDirectory, Func<string, Task>? coordinatorReady, CancellationToken cancellationToken)
    {
        var coordinatorLog = new FileLogger(Path.Combine(runDirectory, "coordinator.log"), LogLevel.Information);
        var agentLog = new FileLogger(Path.Combine(runDirectory, "agents.log"), scenario.Mode == "virtual" ? LogLevel.Warning : LogLevel.Information);
        var coordinatorDirectory = Path.Combine(runDirectory, "coordinator");
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Simulation", ContentRootPath = runDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(FederationPlan.Coordinator(scenario, coordinatorDirectory).Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
            k.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
            k.Limits.Http2.InitialStreamWindowSize = 16 * 1024 * 1024;
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(coordinatorLog);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        VirtualAgentPool? pool = null;
        var colluding = scenario.Attack.NeedsColludingChannel ? new InProcessColludingChannel(TimeProvider.System) : null;
        if (scenario.Mode == "virtual")
        {
            FederationPlan.WriteRoster(scenario, coordinatorDirectory);
            pool = new VirtualAgentPool(scenario.Virtual.PoolSize, (index, address, ct) => StartAgentAsync(scenario, index, address, runDirectory, agentLog, colluding, ct));
            builder.Services.AddSingleton<IAgentActivator>(pool);
        }

        builder.Services.AddFederatedCoordinator(builder.Configuration);
        var agents = new List<IHost>();
        await using var app = builder.Build();
        try
        {
            app.MapFederatedCoordinator();
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            if (coordinatorReady is not null)
            {
                // Before any agent starts (the fuzz campaign uses this window to call the coordinator on its own).
                await coordinatorReady(address).ConfigureAwait(false);
            }
            if (pool is not null)
            {
                pool.Start(address, cancellationToken);
            }
            else
            {
                for (var i = 0; i < scenario.Clients; i++)
                {
                    agents.Add(await StartAgentAsync(scenario, i, address, runDirectory, agentLog, colluding, cancellationToken).ConfigureAwait(false));
                }
            }

            // The coordinator stops itself after the last round (ExitWhenDone) and tells the agents to shut down.
            await ((IHost)app).WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            return pool?.Stats;
        }
        finally
        {
            if (pool is not null)
            {
                await pool.DisposeAsync().ConfigureAwait(false);
            }

            foreach (var agent in agents)
            {
                await StopAgentAsync(agent).ConfigureAwait(false);
            }

            coordinatorLog.Dispose();
            agentLog.Dispose();
        }
    }

    /// <summary>
    /// Builds and starts agent <paramref name="index"/>'s host; its state directory is under the run folder. With
    /// <paramref name="colluding"/>, every agent shares it: honest ones publish to it, omniscient attackers read it.
    /// </summary>
    private static async Task<IHost> StartAgentAsync(Scenario scenario, int index, string address, string runDirectory, ILoggerProvider log, IColludingChannel? colluding, CancellationToken cancellationToken)
    {
        var agentBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Simulation", DisableDefaults = true });
        agentBuilder.Configuration.AddInMemoryCollection(
            FederationPlan.Agent(scenario, index, address, Path.Combine(runDirectory, $"agent-{index:D4}")).Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
        agentBuilder.Logging.AddProvider(log);
        if (colluding is not null)
        {
            agentBuilder.Services.AddSingleton(colluding);
        }

        agentBuilder.Services.AddFederatedClient(agentBuilder.Configuration);
        var agent = agentBuilder.Build();
        try
        {
            await agent.StartAsync(cancellationToken).ConfigureAwait(false);
            return agent;
        }
        catch
        {
            agent.Dispose();
            throw;
        }
    }

    /// <summary>Stops an agent gracefully (10 s grace) and disposes it.</summary>
    internal static async Task StopAgentAsync(IHost agent)
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
}
