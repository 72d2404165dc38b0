using System.Collections.Concurrent;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;

namespace Federated.Coordinator.Transfers;

/// <summary>An upload in progress: its owner, header and assembler. One stream at a time writes to it.</summary>
internal sealed class UploadSlot(string agentId, UploadHeader header, ChunkAssembler assembler)
{
    /// <summary>The agent that owns the transfer.</summary>
    public string AgentId { get; } = agentId;

    /// <summary>The transfer's declared header.</summary>
    public UploadHeader Header { get; } = header;

    /// <summary>The reassembly state.</summary>
    public ChunkAssembler Assembler { get; } = assembler;

    /// <summary>Serialises streams writing to this slot (a resume racing a dying stream).</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);
}

/// <summary>
/// Payloads the coordinator serves (global models) and receives (client updates), plus byte counters per agent.
/// </summary>
internal sealed class TransferHub
{
    private readonly ConcurrentDictionary<string, SealedPayload> _outgoing = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UploadSlot> _uploads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TransferCounters> _counters = new(StringComparer.Ordinal);

    /// <summary>Makes <paramref name="payload"/> downloadable.</summary>
    public void Publish(SealedPayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        _outgoing[payload.TransferId] = payload;
    }

    /// <summary>Stops serving a payload.</summary>
    public void Retire(string transferId) => _outgoing.TryRemove(transferId, out _);

    /// <summary>The payload with <paramref name="transferId"/>, or null.</summary>
    public SealedPayload? FindOutgoing(string transferId) => _outgoing.GetValueOrDefault(transferId);

    /// <summary>Finds or starts the upload <paramref name="transferId"/> of <paramref name="agentId"/>.</summary>
    /// <exception cref="TransferException">Another agent owns the id, or a new transfer lacks its header.</exception>
    public UploadSlot OpenUpload(string agentId, string transferId, UploadHeader? header, long maxBytes)
    {
        if (string.IsNullOrEmpty(transferId))
        {
            throw new TransferException("An upload chunk must name its transfer id.");
        }

        if (_uploads.TryGetValue(transferId, out var existing))
        {
            if (existing.AgentId != agentId)
            {
                throw new TransferException(StatusCode.PermissionDenied, $"Transfer '{transferId}' belongs to another agent.");
            }

            if (header is null || (header.TotalBytes == existing.Header.TotalBytes && header.Sha256.Equals(existing.Header.Sha256)))
            {
                return existing;
            }

            // The agent re-ran the task (e.g. after a reconnect) and now sends a different payload under the same id:
            // the old, partial one is stale and is replaced.
            var replacement = new UploadSlot(agentId, header, new ChunkAssembler(transferId, header.TotalBytes, header.ChunkCount, header.Sha256.Span, maxBytes));
            _uploads[transferId] = replacement;
            return replacement;
        }

        if (header is null)
        {
            throw new TransferException(StatusCode.FailedPrecondition, $"Transfer '{transferId}' is unknown: its first chunk must carry the upload header.");
        }

        var slot = new UploadSlot(agentId, header, new ChunkAssembler(transferId, header.TotalBytes, header.ChunkCount, header.Sha256.Span, maxBytes));
        return _uploads.GetOrAdd(transferId, slot);
    }

    /// <summary>How far upload <paramref name="transferId"/> got, for <paramref name="agentId"/>.</summary>
    public UploadStateReply UploadState(string agentId, string transferId) =>
        _uploads.TryGetValue(transferId, out var slot) && slot.AgentId == agentId
            ? new UploadStateReply { TransferId = transferId, Known = true, Complete = slot.Assembler.IsComplete, NextSequence = slot.Assembler.NextSequence }
            : new UploadStateReply { TransferId = transferId, Known = false };

    /// <summary>Takes the bytes of a completed upload of <paramref name="agentId"/> (removing it).</summary>
    /// <exception cref="TransferException">Unknown, foreign or incomplete transfer.</exception>
    public byte[] TakeCompleted(string agentId, string transferId)
    {
        if (!_uploads.TryGetValue(transferId, out var slot) || slot.AgentId != agentId)
        {
            throw new TransferException(StatusCode.NotFound, $"No upload '{transferId}' from this agent.");
        }

        if (!slot.Assembler.IsComplete)
        {
            throw new TransferException(StatusCode.FailedPrecondition, $"Upload '{transferId}' is incomplete ({slot.Assembler.NextSequence} of {slot.Assembler.ChunkCount} chunks).");
        }

        _uploads.TryRemove(transferId, out _);
        return slot.Assembler.Bytes;
    }

    /// <summary>Drops upload <paramref name="transferId"/> of <paramref name="agentId"/>, complete or not: a result no round will take.</summary>
    public void Discard(string agentId, string transferId)
    {
        if (!string.IsNullOrEmpty(transferId) && _uploads.TryGetValue(transferId, out var slot) && slot.AgentId == agentId)
        {
            _uploads.TryRemove(new KeyValuePair<string, UploadSlot>(transferId, slot));
        }
    }

    /// <summary>Drops unfinished uploads of rounds up to <paramref name="round"/> by the agents <paramref name="owned"/> selects (a run's own).</summary>
    public int PurgeUploads(int round, Func<string, bool> owned)
    {
        ArgumentNullException.ThrowIfNull(owned);
        var dropped = 0;
        foreach (var (id, slot) in _uploads)
        {
            if (slot.Header.Round <= round && owned(slot.AgentId) && _uploads.TryRemove(id, out _))
            {
                dropped++;
            }
        }

        return dropped;
    }

    /// <summary>The counters of <paramref name="agentId"/>.</summary>
    public TransferCounters CountersFor(string agentId) => _counters.GetOrAdd(agentId, _ => new TransferCounters());

    /// <summary>Snapshots and resets the counters of the agents <paramref name="owned"/> selects (a run's own).</summary>
    public IReadOnlyDictionary<string, TransferCounts> TakeCounters(Func<string, bool> owned) =>
        _counters.Where(kv => owned(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.TakeAndReset(), StringComparer.Ordinal);

    /// <summary>Stops serving every payload whose id starts with <paramref name="prefix"/> (an ended run's).</summary>
    public int RetireAll(string prefix)
    {
        var retired = 0;
        foreach (var id in _outgoing.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)))
        {
            retired += _outgoing.TryRemove(id, out _) ? 1 : 0;
        }

        return retired;
    }
}

/// <summary>Bytes moved for one agent: payload bytes and gRPC message bytes (payload + chunk fields + 5-byte framing).</summary>
internal sealed class TransferCounters
{
    private long _downPayload;
    private long _downWire;
    private long _upPayload;
    private long _upWire;

    /// <summary>Counts a chunk sent to the agent.</summary>
    public void Sent(Chunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        Interlocked.Add(ref _downPayload, chunk.Data.Length);
        Interlocked.Add(ref _downWire, chunk.CalculateSize() + 5);
    }

    /// <summary>Counts a chunk received from the agent.</summary>
    public void Received(Chunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        Interlocked.Add(ref _upPayload, chunk.Data.Length);
        Interlocked.Add(ref _upWire, chunk.CalculateSize() + 5);
    }

    internal TransferCounts TakeAndReset() => new(
        Interlocked.Exchange(ref _downPayload, 0),
        Interlocked.Exchange(ref _downWire, 0),
        Interlocked.Exchange(ref _upPayload, 0),
        Interlocked.Exchange(ref _upWire, 0));
}

/// <summary>A snapshot of <see cref="TransferCounters"/>.</summary>
internal sealed record TransferCounts(long DownPayload, long DownWire, long UpPayload, long UpWire);
