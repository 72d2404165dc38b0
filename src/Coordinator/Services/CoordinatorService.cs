using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Core;

namespace Federated.Coordinator.Services;

/// <summary>Translates the <c>Coordinator</c> gRPC service to the coordinator's domain.</summary>
public sealed partial class CoordinatorService(CoordinatorClock clock, ILogger<CoordinatorService> logger) : Protocol.V1.Coordinator.CoordinatorBase
{
    /// <inheritdoc />
    public override Task<StatusReply> GetStatus(StatusRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        if (request.ProtocolVersion != 0 && request.ProtocolVersion != ProtocolVersion.Current)
        {
            LogVersionMismatch(logger, context.Peer, request.ProtocolVersion, ProtocolVersion.Current);
        }

        return Task.FromResult(new StatusReply
        {
            ProtocolVersion = ProtocolVersion.Current,
            CoordinatorVersion = typeof(CoordinatorService).Assembly.GetName().Version?.ToString() ?? "0",
            UptimeSeconds = clock.Uptime.TotalSeconds,
        });
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Peer {Peer} speaks protocol {PeerVersion}; this coordinator speaks {Version}")]
    private static partial void LogVersionMismatch(ILogger logger, string peer, uint peerVersion, uint version);
}
