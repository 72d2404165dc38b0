using System.Threading.Channels;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Rounds;

/// <summary>Something the round loop must react to.</summary>
internal abstract record RoundEvent(string AgentId);

/// <summary>An agent reported a task result.</summary>
internal sealed record ResultReceived(string AgentId, TaskResult Result) : RoundEvent(AgentId);

/// <summary>
/// An upload accepted its next chunk (CRC checked, in order). <paramref name="Header"/> is the transfer's header;
/// <paramref name="Data"/> is the chunk's bytes (immutable).
/// </summary>
internal sealed record UploadChunkReceived(string AgentId, string TransferId, UploadHeader Header, int Sequence, ReadOnlyMemory<byte> Data) : RoundEvent(AgentId);

/// <summary>An agent answered a secure-aggregation stage.</summary>
internal sealed record SecAggReceived(string AgentId, SecAggReply Reply) : RoundEvent(AgentId);

/// <summary>An agent's session opened or closed.</summary>
internal sealed record AgentChanged(string AgentId, bool Connected) : RoundEvent(AgentId);

/// <summary>The reconnect grace of an agent whose session dropped during round <paramref name="Round"/> ran out.</summary>
internal sealed record ReconnectGraceEnded(string AgentId, int Round) : RoundEvent(AgentId);

/// <summary>The queue from the gRPC handlers to the round loop.</summary>
internal sealed class RoundEvents
{
    private readonly Channel<RoundEvent> _channel = Channel.CreateUnbounded<RoundEvent>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Posts an event (never blocks).</summary>
    public void Post(RoundEvent roundEvent) => _channel.Writer.TryWrite(roundEvent);

    /// <summary>The reader the round loop consumes.</summary>
    public ChannelReader<RoundEvent> Reader => _channel.Reader;
}
