using System.Net;
using Federated.Client.Hosting;
using Federated.Coordinator.Hosting;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Federated.Samples;

/// <summary>
/// The plumbing the samples share: a real coordinator (Kestrel, HTTP/2 on 127.0.0.1) and real agents
/// (<c>AddFederatedClient</c>) in one process, talking gRPC over loopback. The same code runs as separate processes
/// on separate machines; only the addresses change.
/// </summary>
internal sealed class LoopbackFederation : IAsyncDisposable
{
    private readonly WebApplication _coordinator;
    private readonly List<IHost> _agents = [];
    private readonly string _root;

    private LoopbackFederation(WebApplication coordinator, string address, string root)
    {
        _coordinator = coordinator;
        Address = address;
        _root = root;
    }

    /// <summary>The coordinator's gRPC address.</summary>
    public string Address { get; }

    /// <summary>The coordinator's state directory (checkpoints, rounds.csv).</summary>
    public string StateDirectory => Path.Combine(_root, "coordinator");

    /// <summary>Starts a coordinator with small defaults overridden by <paramref name="settings"/> (<c>Coordinator:*</c> keys).</summary>
    public static async Task<LoopbackFederation> StartAsync(IDictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    {
        var root = Directory.CreateTempSubdirectory("federated-sample-").FullName;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Coordinator:StateDirectory"] = Path.Combine(root, "coordinator"),
            ["Coordinator:Rounds"] = "2",
            ["Coordinator:MinAvailable"] = "2",
            ["Coordinator:MinFit"] = "2",
            ["Coordinator:RoundDeadlineSeconds"] = "60",
            ["Coordinator:Training:Optimizer"] = "sgd",
            ["Coordinator:Training:LearningRate"] = "0.1",
            ["Coordinator:Training:BatchSize"] = "16",
            ["Coordinator:Evaluation:Threads"] = "1",
            ["Coordinator:HeartbeatSeconds"] = "0.5",
            ["Coordinator:Prometheus:Enabled"] = "false",
            ["Coordinator:Security:Mode"] = "open",
            ["Coordinator:Security:Plaintext"] = "loopback",
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders().AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        services?.Invoke(builder.Services);
        builder.Services.AddFederatedCoordinator(builder.Configuration);
        var app = builder.Build();
        app.MapFederatedCoordinator();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new LoopbackFederation(app, address, root);
    }

    /// <summary>Starts agent <paramref name="index"/> of <paramref name="count"/> (<c>Client:*</c> settings on top of small defaults).</summary>
    public void StartAgent(int index, int count, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Client:CoordinatorAddress"] = Address,
            ["Client:AgentId"] = $"agent-{index}",
            ["Client:Device"] = "cpu",
            ["Client:Threads"] = "1",
            ["Client:StateDirectory"] = Path.Combine(_root, $"agent-{index}"),
            ["Client:Data:Normalization"] = "none",
            ["Client:Data:Clients"] = count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Client:Data:Index"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddFederatedClient(builder.Configuration);
        services?.Invoke(builder.Services);
        var host = builder.Build();
        host.Start();
        _agents.Add(host);
    }

    /// <summary>Polls the coordinator's public status RPC until the run has finished; returns the final status.</summary>
    public async Task<StatusReply> WaitUntilFinishedAsync(TimeSpan timeout)
    {
        using var channel = GrpcChannel.ForAddress(Address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current });
            if (status.Finished)
            {
                return status;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The run had not finished after {timeout.TotalSeconds} s (round {status.CurrentRound} of {status.TotalRounds}).");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>The coordinator's per-round records (rounds.csv), one dictionary per round.</summary>
    public IReadOnlyList<Dictionary<string, string>> RoundMetrics()
    {
        var lines = File.ReadAllLines(Path.Combine(StateDirectory, "rounds.csv"));
        var header = lines[0].Split(',');
        return [.. lines.Skip(1).Select(line => header.Zip(line.Split(',')).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal))];
    }

    /// <summary>Stops the agents, then the coordinator, and deletes the state directories.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.StopAsync(TimeSpan.FromSeconds(10));
            agent.Dispose();
        }

        await _coordinator.StopAsync(TimeSpan.FromSeconds(10));
        await _coordinator.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}
