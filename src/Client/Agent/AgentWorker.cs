using Federated.Client.Hosting;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace Federated.Client.Agent;

/// <summary>
/// The agent's main loop. This first version checks that the coordinator answers and speaks our protocol;
/// the federated round (enrol, task stream, local training, upload) plugs in here.
/// </summary>
public sealed partial class AgentWorker(IOptions<ClientOptions> options, ILogger<AgentWorker> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var address = options.Value.CoordinatorAddress!;
        using var channel = GrpcChannel.ForAddress(address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        try
        {
            var status = await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current }, cancellationToken: stoppingToken);
            LogConnected(logger, address, status.ProtocolVersion, status.UptimeSeconds);
        }
        catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
        {
            LogUnreachable(logger, address, e.StatusCode, e.Status.Detail);
        }
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Coordinator {Address} speaks protocol {Version}, up {Uptime:F0} s")]
    private static partial void LogConnected(ILogger logger, Uri address, uint version, double uptime);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Coordinator {Address} did not answer: {Code} {Detail}")]
    private static partial void LogUnreachable(ILogger logger, Uri address, StatusCode code, string detail);
}
