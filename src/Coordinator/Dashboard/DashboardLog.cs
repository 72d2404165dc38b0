namespace Federated.Coordinator.Dashboard;

/// <summary>Source-generated log messages of the dashboard (event ids 1300–1319).</summary>
internal static partial class DashboardLog
{
    [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Dashboard at {Path}/ on {Where}, access token {Token}, refreshed every {RefreshSeconds} s")]
    public static partial void Serving(ILogger logger, string path, string where, string token, double refreshSeconds);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Dashboard request {Path} from {Peer} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string path, string peer, string reason);
}
