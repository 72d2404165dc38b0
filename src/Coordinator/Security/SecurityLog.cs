namespace Federated.Coordinator.Security;

/// <summary>Source-generated log messages of agent identity and transport security (event ids 1200–1219).</summary>
internal static partial class SecurityLog
{
    [LoggerMessage(EventId = 1200, Level = LogLevel.Warning, Message = "Enrolment of agent '{AgentId}' from {Peer} refused ({Code}): {Reason}")]
    public static partial void EnrolRefused(ILogger logger, string agentId, string peer, Grpc.Core.StatusCode code, string reason);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "Session of agent '{AgentId}' from {Peer} refused ({Code}): {Reason}")]
    public static partial void SessionRefused(ILogger logger, string agentId, string peer, Grpc.Core.StatusCode code, string reason);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Agent {AgentId} was revoked: its token is void and its session closed")]
    public static partial void AgentRevoked(ILogger logger, string agentId);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "The agent registry {Path} could not be read, the last good copy stays in force: {Reason}")]
    public static partial void RegistryUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Warning, Message = "Enrolment from {Peer} refused: over {PerMinute} enrolments per minute (retry in {RetrySeconds:F1} s)")]
    public static partial void EnrolRateLimited(ILogger logger, string peer, double perMinute, double retrySeconds);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Warning, Message = "Plaintext call {Method} from {Peer} refused: Coordinator:Security:Plaintext is {Policy}")]
    public static partial void PlaintextRefused(ILogger logger, string method, string peer, Hosting.PlaintextPolicy policy);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Information, Message = "Agent {AgentId} admitted by key ({Via})")]
    public static partial void KeyAdmitted(ILogger logger, string agentId, string via);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Information, Message = "Security: enrolment {Mode}, plaintext {Plaintext}, TLS {Tls}, agent registry {Path}")]
    public static partial void Configured(ILogger logger, string mode, Hosting.PlaintextPolicy plaintext, string tls, string path);
}
