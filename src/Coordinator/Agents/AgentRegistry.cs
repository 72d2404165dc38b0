using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Agents;

/// <summary>An enrolled agent: its credentials, capabilities and (when connected) its session.</summary>
internal sealed class AgentRecord
{
    internal AgentRecord(string id, string token, Capabilities capabilities)
    {
        Id = id;
        Token = token;
        Capabilities = capabilities;
    }

    /// <summary>The agent id.</summary>
    public string Id { get; }

    /// <summary>The session token issued at this process's latest enrolment of the agent; empty for one restored from the store.</summary>
    public string Token { get; internal set; }

    /// <summary>Lower-case hex SHA-256 of the agent's current session token (what the store keeps).</summary>
    public string TokenSha256 { get; internal set; } = "";

    /// <summary>When the agent first enrolled (Unix milliseconds; 0 for a pre-registered agent that has not).</summary>
    public long EnrolledUnixMs { get; internal set; }

    /// <summary>What the agent reported at enrolment or hello.</summary>
    public Capabilities Capabilities { get; internal set; }

    /// <summary>The open session, if any.</summary>
    public AgentConnection? Connection { get; internal set; }

    /// <summary>The agent's verified Ed25519 public key (32 raw bytes); null for a keyless agent (open enrolment).</summary>
    public byte[]? PublicKey { get; internal set; }

    /// <summary>True once the agent was revoked: it has no token and may not enrol or open a session again.</summary>
    public bool Revoked { get; internal set; }

    /// <summary>When the agent was last heard from (<see cref="TimeProvider.GetTimestamp"/> units).</summary>
    public long LastSeen { get; internal set; }

    /// <summary>Messages held for the agent's next session (tasks sampled while it was offline). Guarded by the record's lock.</summary>
    internal List<CoordinatorMessage> Held { get; } = [];
}

/// <summary>One open session stream: messages for the agent queue in <see cref="Outbox"/>.</summary>
internal sealed class AgentConnection
{
    internal AgentConnection(string agentId, long number)
    {
        AgentId = agentId;
        Number = number;
    }

    /// <summary>The agent.</summary>
    public string AgentId { get; }

    /// <summary>Distinguishes successive connections of one agent.</summary>
    public long Number { get; }

    /// <summary>Messages waiting to be written to the agent's stream.</summary>
    public Channel<CoordinatorMessage> Outbox { get; } = Channel.CreateBounded<CoordinatorMessage>(
        new BoundedChannelOptions(256) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    /// <summary>Cancelled when the registry closes this connection (replaced by a newer one, or shut down).</summary>
    public CancellationTokenSource Closed { get; } = new();
}

/// <summary>What happened to an agent, for the round loop.</summary>
internal enum AgentEventKind
{
    /// <summary>A session opened.</summary>
    Connected,

    /// <summary>A session ended (stream closed, broken or timed out).</summary>
    Disconnected,
}

/// <summary>
/// The agents the coordinator knows. Thread-safe. Session tokens are looked up by their SHA-256, the form the store
/// keeps, so that enrolments restored after a restart (<see cref="Restore"/>) still authenticate their agents.
/// </summary>
internal sealed class AgentRegistry(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, AgentRecord> _agents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _byTokenHash = new(StringComparer.Ordinal);
    private long _connections;

    /// <summary>Raised after a session opens or closes.</summary>
    public event Action<string, AgentEventKind>? Changed;

    /// <summary>Raised after an enrolment, before its reply leaves (the store records it here).</summary>
    public event Action<AgentRecord>? Enrolled;

    /// <summary>
    /// Enrols (or re-enrols) an agent and issues a fresh session token. An id, once enrolled with a key, stays with that
    /// key: a later enrolment with another key (or none) is refused, as is any enrolment of a revoked agent.
    /// </summary>
    /// <returns>The record, or null when the id is held by another key or was revoked.</returns>
    public AgentRecord? Enroll(string? requestedId, Capabilities capabilities, byte[]? publicKey = null)
    {
        var id = string.IsNullOrWhiteSpace(requestedId) ? $"agent-{Guid.NewGuid():N}"[..18] : requestedId.Trim();
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        var hash = HashToken(token);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var record = _agents.GetOrAdd(id, _ => new AgentRecord(id, "", capabilities));
        lock (record)
        {
            if (record.Revoked || (record.PublicKey is { } pinned && (publicKey is null || !CryptographicOperations.FixedTimeEquals(pinned, publicKey))))
            {
                return null;
            }

            if (record.TokenSha256.Length > 0)
            {
                _byTokenHash.TryRemove(record.TokenSha256, out string? _);
            }

            record.Token = token;
            record.TokenSha256 = hash;
            record.Capabilities = capabilities;
            record.LastSeen = time.GetTimestamp();
            record.PublicKey ??= publicKey;
            if (record.EnrolledUnixMs == 0)
            {
                record.EnrolledUnixMs = now;
            }

            _byTokenHash[hash] = id;
        }

        Enrolled?.Invoke(record);
        return record;
    }

    /// <summary>
    /// Restores an enrolment kept by the store: the agent is known again (in the population of a round that samples
    /// enrolled agents) and its session token, of which only the hash was kept, still authenticates it.
    /// </summary>
    public void Restore(string agentId, string tokenSha256, Capabilities capabilities, long enrolledUnixMs)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agentId);
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenSha256);
        var record = _agents.GetOrAdd(agentId, id => new AgentRecord(id, token: "", capabilities));
        lock (record)
        {
            if (record.TokenSha256.Length == 0)
            {
                record.TokenSha256 = tokenSha256;
                record.Capabilities = capabilities;
                record.EnrolledUnixMs = enrolledUnixMs;
                _byTokenHash[tokenSha256] = agentId;
            }
        }
    }

    /// <summary>Lower-case hex SHA-256 of a session token.</summary>
    public static string HashToken(string token) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));

    /// <summary>
    /// Revokes agent <paramref name="id"/>: its session token stops working, its open session is closed and it may not
    /// enrol again.
    /// </summary>
    /// <returns>False when the agent is unknown or already revoked.</returns>
    public bool Revoke(string id)
    {
        if (Find(id) is not { } agent)
        {
            return false;
        }

        AgentConnection? connection;
        lock (agent)
        {
            if (agent.Revoked)
            {
                return false;
            }

            agent.Revoked = true;
            _byTokenHash.TryRemove(agent.TokenSha256, out string? _);
            agent.Token = "";
            agent.TokenSha256 = "";
            agent.Held.Clear();
            connection = agent.Connection;
        }

        if (connection is not null)
        {
            connection.Outbox.Writer.TryComplete();
            connection.Closed.Cancel();
        }

        return true;
    }

    /// <summary>
    /// Registers agents that have not enrolled yet (a roster), so a round sampling every known agent can choose them;
    /// they get a token when they enrol. Ids already known are left as they are.
    /// </summary>
    /// <returns>How many ids were new.</returns>
    public int Preregister(IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var added = 0;
        foreach (var id in ids)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(id);
            if (_agents.TryAdd(id.Trim(), new AgentRecord(id.Trim(), token: "", new Capabilities())))
            {
                added++;
            }
        }

        return added;
    }

    /// <summary>The agent holding <paramref name="token"/>, or null.</summary>
    public AgentRecord? Authenticate(string? token) =>
        !string.IsNullOrEmpty(token) && _byTokenHash.TryGetValue(HashToken(token), out var id) && _agents.TryGetValue(id, out var record) ? record : null;

    /// <summary>Opens a session for <paramref name="agent"/>, closing any older one.</summary>
    public AgentConnection Connect(AgentRecord agent, Capabilities? capabilities)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var connection = new AgentConnection(agent.Id, Interlocked.Increment(ref _connections));
        AgentConnection? previous;
        lock (agent)
        {
            previous = agent.Connection;
            agent.Connection = connection;

            // Tasks sampled while the agent was offline go out first, in the order they were held.
            foreach (var held in agent.Held)
            {
                connection.Outbox.Writer.TryWrite(held);
            }

            agent.Held.Clear();
            if (capabilities is not null)
            {
                agent.Capabilities = capabilities;
            }

            agent.LastSeen = time.GetTimestamp();
            if (agent.Revoked)
            {
                // Revoked between the session's checks and now: the session closes at once.
                connection.Outbox.Writer.TryComplete();
                connection.Closed.Cancel();
            }
        }

        if (previous is not null)
        {
            previous.Outbox.Writer.TryComplete();
            previous.Closed.Cancel();
        }

        Changed?.Invoke(agent.Id, AgentEventKind.Connected);
        return connection;
    }

    /// <summary>Closes <paramref name="connection"/> if it is still the agent's current one.</summary>
    public void Disconnect(AgentConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.Outbox.Writer.TryComplete();
        if (!_agents.TryGetValue(connection.AgentId, out var agent))
        {
            return;
        }

        var wasCurrent = false;
        lock (agent)
        {
            if (ReferenceEquals(agent.Connection, connection))
            {
                agent.Connection = null;
                wasCurrent = true;
            }
        }

        if (wasCurrent)
        {
            Changed?.Invoke(agent.Id, AgentEventKind.Disconnected);
        }
    }

    /// <summary>Records that the agent was heard from.</summary>
    public void Touch(AgentRecord agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        agent.LastSeen = time.GetTimestamp();
    }

    /// <summary>Ids of agents with an open session, sorted.</summary>
    public IReadOnlyList<string> ConnectedIds() =>
        _agents.Values.Where(a => a.Connection is not null).Select(a => a.Id).Order(StringComparer.Ordinal).ToList();

    /// <summary>Ids of every known agent (pre-registered or enrolled, connected or not), sorted.</summary>
    public IReadOnlyList<string> KnownIds() => _agents.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>True when the agent has an open session.</summary>
    public bool IsConnected(string agentId) => Find(agentId)?.Connection is not null;

    /// <summary>The agent with <paramref name="id"/>, or null.</summary>
    public AgentRecord? Find(string id) => _agents.GetValueOrDefault(id);

    /// <summary>Queues <paramref name="message"/> for the agent's current session.</summary>
    /// <returns>False when the agent has no open session or its queue is closed.</returns>
    public bool TrySend(string agentId, CoordinatorMessage message)
    {
        var connection = Find(agentId)?.Connection;
        return connection is not null && connection.Outbox.Writer.TryWrite(message);
    }

    /// <summary>
    /// Queues <paramref name="message"/> for the agent's session, or holds it for the next session when it has none or
    /// its session is <paramref name="closingSession"/> (one about to end).
    /// </summary>
    /// <returns>False only when the agent is unknown.</returns>
    public bool SendOrHold(string agentId, CoordinatorMessage message, long? closingSession = null)
    {
        if (Find(agentId) is not { } agent)
        {
            return false;
        }

        lock (agent)
        {
            if (agent.Connection is { } connection && connection.Number != closingSession && connection.Outbox.Writer.TryWrite(message))
            {
                return true;
            }

            agent.Held.Add(message);
            return true;
        }
    }

    /// <summary>True when messages wait for the agent's next session (it has not come for its task yet).</summary>
    public bool HasHeld(string agentId)
    {
        if (Find(agentId) is not { } agent)
        {
            return false;
        }

        lock (agent)
        {
            return agent.Held.Count > 0;
        }
    }

    /// <summary>Drops what is held for the agent's next session (the round that sampled it closed).</summary>
    /// <returns>True when something was held, i.e. the agent never came for its task.</returns>
    public bool DropHeld(string agentId)
    {
        if (Find(agentId) is not { } agent)
        {
            return false;
        }

        lock (agent)
        {
            var any = agent.Held.Count > 0;
            agent.Held.Clear();
            return any;
        }
    }

    /// <summary>Sends <paramref name="message"/> to every connected agent and closes their queues.</summary>
    public IReadOnlyList<AgentConnection> Broadcast(CoordinatorMessage message, bool closeAfter)
    {
        var connections = _agents.Values.Select(a => a.Connection).OfType<AgentConnection>().ToList();
        foreach (var connection in connections)
        {
            connection.Outbox.Writer.TryWrite(message);
            if (closeAfter)
            {
                connection.Outbox.Writer.TryComplete();
            }
        }

        return connections;
    }
}
