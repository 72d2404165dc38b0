using System.Security.Cryptography;
using Federated.Protocol.V1;
using Grpc.Core;

namespace Federated.Protocol.Transfers;

/// <summary>
/// Reassembles one transfer from in-order chunks, checking sequence numbers, per-chunk CRC-32C, the declared size
/// and finally the SHA-256. Keeps what it accepted, so an interrupted transfer resumes at <see cref="NextSequence"/>.
/// Not thread-safe: one writer at a time (the coordinator serialises uploads per transfer). The buffer grows with the
/// bytes that arrive (doubling, up to the declared size), so a header that declares a large transfer costs nothing
/// until its bytes are actually sent.
/// </summary>
public sealed class ChunkAssembler
{
    private const int InitialBytes = 64 * 1024;

    private readonly int _total;
    private readonly byte[] _sha256;
    private byte[] _buffer;
    private int _filled;

    /// <summary>Prepares for a transfer of <paramref name="totalBytes"/> bytes in <paramref name="chunkCount"/> chunks.</summary>
    /// <exception cref="TransferException">The geometry is impossible or above <paramref name="maxBytes"/>.</exception>
    public ChunkAssembler(string transferId, long totalBytes, int chunkCount, ReadOnlySpan<byte> sha256, long maxBytes)
    {
        if (totalBytes < 0 || totalBytes > maxBytes)
        {
            throw new TransferException(StatusCode.ResourceExhausted, $"Transfer '{transferId}' declares {totalBytes} bytes; the limit is {maxBytes}.");
        }

        if (chunkCount < 1 || chunkCount > Math.Max(1, totalBytes))
        {
            throw new TransferException($"Transfer '{transferId}' declares {chunkCount} chunks for {totalBytes} bytes.");
        }

        if (sha256.Length != 32)
        {
            throw new TransferException($"Transfer '{transferId}' must declare a 32-byte SHA-256, not {sha256.Length} bytes.");
        }

        TransferId = transferId;
        ChunkCount = chunkCount;
        _total = (int)totalBytes;
        _buffer = new byte[Math.Min(_total, InitialBytes)];
        _sha256 = sha256.ToArray();
    }

    /// <summary>The transfer id.</summary>
    public string TransferId { get; }

    /// <summary>Chunks the transfer has in all.</summary>
    public int ChunkCount { get; }

    /// <summary>The next chunk expected (the resume point).</summary>
    public int NextSequence { get; private set; }

    /// <summary>True once every chunk arrived and the SHA-256 matched.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>The assembled bytes (only once <see cref="IsComplete"/>).</summary>
    public byte[] Bytes => IsComplete ? _buffer : throw new InvalidOperationException($"Transfer '{TransferId}' is not complete.");

    /// <summary>Accepts the next chunk; a chunk already accepted (a resend after a break) is ignored.</summary>
    /// <returns>True when the chunk completed the transfer.</returns>
    /// <exception cref="TransferException">Out of order, bad CRC, too large, or a SHA-256 mismatch at the end.</exception>
    public bool Accept(Chunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (IsComplete || chunk.Sequence < NextSequence)
        {
            return IsComplete;
        }

        if (chunk.Sequence != NextSequence)
        {
            throw new TransferException(StatusCode.OutOfRange, $"Transfer '{TransferId}': expected chunk {NextSequence}, got {chunk.Sequence}.");
        }

        var data = chunk.Data.Span;
        if (Crc32C.Compute(data) != chunk.Crc32C)
        {
            throw new TransferException(StatusCode.DataLoss, $"Transfer '{TransferId}': chunk {chunk.Sequence} failed its CRC-32C check (corrupted in transit); resend it.");
        }

        if (_filled + data.Length > _total || (chunk.Sequence == ChunkCount - 1 && _filled + data.Length != _total))
        {
            throw new TransferException($"Transfer '{TransferId}': chunk {chunk.Sequence} does not fit the declared {_total} bytes.");
        }

        if (_filled + data.Length > _buffer.Length)
        {
            Array.Resize(ref _buffer, (int)Math.Min(_total, Math.Max(2L * _buffer.Length, _filled + data.Length)));
        }

        data.CopyTo(_buffer.AsSpan(_filled));
        _filled += data.Length;
        NextSequence++;
        if (NextSequence < ChunkCount)
        {
            return false;
        }

        if (!SHA256.HashData(_buffer.AsSpan(0, _filled)).AsSpan().SequenceEqual(_sha256))
        {
            NextSequence = 0;
            _filled = 0;
            throw new TransferException(StatusCode.DataLoss, $"Transfer '{TransferId}': the SHA-256 of the assembled payload does not match its header; the transfer restarts from chunk 0.");
        }

        IsComplete = true;
        return true;
    }
}
