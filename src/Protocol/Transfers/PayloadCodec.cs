using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Federated.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Federated.Protocol.Transfers;

/// <summary>A serialised payload ready to be chunked: bytes, SHA-256 and chunk geometry.</summary>
public sealed class SealedPayload
{
    /// <summary>Serialises <paramref name="payload"/>.</summary>
    public SealedPayload(string transferId, Payload payload, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 1024);
        TransferId = transferId;
        Bytes = payload.ToByteArray();
        Sha256 = SHA256.HashData(Bytes);
        ChunkBytes = chunkBytes;
    }

    /// <summary>Wraps bytes that an earlier <see cref="SealedPayload"/> serialised (a resumed upload after a restart: same bytes, same SHA-256).</summary>
    public SealedPayload(string transferId, byte[] bytes, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 1024);
        TransferId = transferId;
        Bytes = bytes;
        Sha256 = SHA256.HashData(Bytes);
        ChunkBytes = chunkBytes;
    }

    /// <summary>The transfer id.</summary>
    public string TransferId { get; }

    /// <summary>The serialised payload.</summary>
    public byte[] Bytes { get; }

    /// <summary>SHA-256 of <see cref="Bytes"/>.</summary>
    public byte[] Sha256 { get; }

    /// <summary>Bytes per chunk (the last may be shorter).</summary>
    public int ChunkBytes { get; }

    /// <summary>Number of chunks (at least one, even for an empty payload).</summary>
    public int ChunkCount => Math.Max(1, (Bytes.Length + ChunkBytes - 1) / ChunkBytes);

    /// <summary>Chunk <paramref name="sequence"/> with its CRC-32C.</summary>
    public Chunk GetChunk(int sequence)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(sequence, ChunkCount);
        var start = sequence * ChunkBytes;
        var span = Bytes.AsSpan(start, Math.Min(ChunkBytes, Bytes.Length - start));
        return new Chunk { TransferId = TransferId, Sequence = sequence, Data = ByteString.CopyFrom(span), Crc32C = Crc32C.Compute(span) };
    }

    /// <summary>The reference a task carries.</summary>
    public PayloadRef ToRef() => new()
    {
        TransferId = TransferId,
        TotalBytes = Bytes.Length,
        ChunkCount = ChunkCount,
        ChunkBytes = ChunkBytes,
        Sha256 = ByteString.CopyFrom(Sha256),
    };

    /// <summary>The header an upload's first chunk carries (<paramref name="numExamples"/>: the update's weight, 0 when unknown).</summary>
    public UploadHeader ToUploadHeader(string taskId, int round, long numExamples = 0) => new()
    {
        TaskId = taskId,
        Round = round,
        NumExamples = numExamples,
        TotalBytes = Bytes.Length,
        ChunkCount = ChunkCount,
        Sha256 = ByteString.CopyFrom(Sha256),
    };
}

/// <summary>Builds and validates payloads of named tensors: dense float32, or codec-encoded (compressed) vectors.</summary>
public static class PayloadCodec
{
    /// <summary>The tensor name of a model or a model delta.</summary>
    public const string ModelTensor = "model";

    /// <summary>
    /// Bytes of the header every codec-encoded tensor starts with: codec id, format version, element count (uint32,
    /// little-endian). The same 6 bytes as <c>Federated.Learning.Compression.CodecHeader</c>, which decodes the rest.
    /// </summary>
    public const int CodecHeaderBytes = 6;

    /// <summary>The default chunk size: 1 MiB, well under gRPC's 4 MB default receive limit.</summary>
    public const int DefaultChunkBytes = 1024 * 1024;

    /// <summary>Adds a dense float32 tensor to <paramref name="payload"/>.</summary>
    public static void AddDense(Payload payload, string name, ReadOnlySpan<float> values, ReadOnlySpan<long> shape = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var tensor = new NamedTensor
        {
            Name = name,
            Encoding = TensorEncoding.DenseF32,
            Data = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)),
        };
        if (shape.IsEmpty)
        {
            tensor.Shape.Add(values.Length);
        }
        else
        {
            foreach (var d in shape)
            {
                tensor.Shape.Add(d);
            }
        }

        payload.Tensors.Add(tensor);
    }

    /// <summary>Adds a codec-encoded vector of <paramref name="elementCount"/> floats (<see cref="TensorEncoding.Codec"/>, shape [n]).</summary>
    /// <exception cref="ArgumentException">The bytes cannot hold a codec header, or the header's element count is not <paramref name="elementCount"/>.</exception>
    public static void AddEncoded(Payload payload, string name, ReadOnlySpan<byte> encoded, long elementCount)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentOutOfRangeException.ThrowIfNegative(elementCount);
        if (encoded.Length < CodecHeaderBytes || CodecElementCount(encoded) != elementCount)
        {
            throw new ArgumentException($"Tensor '{name}': the encoded bytes do not start with a codec header for {elementCount} elements.", nameof(encoded));
        }

        payload.Tensors.Add(new NamedTensor
        {
            Name = name,
            Encoding = TensorEncoding.Codec,
            Shape = { elementCount },
            Data = ByteString.CopyFrom(encoded),
        });
    }

    /// <summary>Adds a vector of ring elements (<see cref="TensorEncoding.RingU32"/>, little-endian uint32, shape [n]): a SecAgg+ masked input.</summary>
    public static void AddRing(Payload payload, string name, ReadOnlySpan<uint> values)
    {
        ArgumentNullException.ThrowIfNull(payload);
        payload.Tensors.Add(new NamedTensor
        {
            Name = name,
            Encoding = TensorEncoding.RingU32,
            Shape = { values.Length },
            Data = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)),
        });
    }

    /// <summary>The named ring tensor, checked to hold <paramref name="expectedLength"/> elements (when not negative).</summary>
    /// <exception cref="TransferException">Missing tensor, one of another length, or one not <see cref="TensorEncoding.RingU32"/>.</exception>
    public static uint[] ReadRing(Payload payload, string name, long expectedLength = -1)
    {
        var tensor = GetTensor(payload, name, expectedLength);
        return tensor.Encoding == TensorEncoding.RingU32
            ? MemoryMarshal.Cast<byte, uint>(tensor.Data.Span).ToArray()
            : throw new TransferException($"Tensor '{tensor.Name}' is {tensor.Encoding}-encoded where a ring vector (RingU32) is expected.");
    }

    /// <summary>Parses and validates a payload received in full.</summary>
    /// <exception cref="TransferException">Malformed, unknown encoding, bad shape or wrong layout.</exception>
    public static Payload Parse(byte[] bytes, string? expectedFingerprint)
    {
        Payload payload;
        try
        {
            payload = Payload.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new TransferException($"The payload is not a valid Payload message: {e.Message}", e);
        }

        if (expectedFingerprint is not null && payload.LayoutFingerprint != expectedFingerprint)
        {
            throw new TransferException(StatusCode.FailedPrecondition,
                $"The payload's layout '{payload.LayoutFingerprint}' does not match the model's layout '{expectedFingerprint}'.");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in payload.Tensors)
        {
            if (string.IsNullOrEmpty(tensor.Name) || !names.Add(tensor.Name))
            {
                throw new TransferException($"Payload tensor names must be non-empty and unique ('{tensor.Name}').");
            }

            var elements = ElementCount(tensor);
            switch (tensor.Encoding)
            {
                case TensorEncoding.DenseF32 when tensor.Data.Length != elements * sizeof(float):
                    throw new TransferException($"Tensor '{tensor.Name}' declares {elements} floats but carries {tensor.Data.Length} bytes.");
                case TensorEncoding.DenseF32:
                    break;
                case TensorEncoding.Codec when tensor.Data.Length < CodecHeaderBytes:
                    throw new TransferException($"Tensor '{tensor.Name}' is codec-encoded but carries {tensor.Data.Length} bytes, fewer than the {CodecHeaderBytes}-byte codec header.");
                case TensorEncoding.Codec when CodecElementCount(tensor.Data.Span) != elements:
                    throw new TransferException($"Tensor '{tensor.Name}' declares {elements} floats but its codec header says {CodecElementCount(tensor.Data.Span)}.");
                case TensorEncoding.Codec:
                    break;
                case TensorEncoding.RingU32 when tensor.Data.Length != elements * sizeof(uint):
                    throw new TransferException($"Tensor '{tensor.Name}' declares {elements} ring elements but carries {tensor.Data.Length} bytes.");
                case TensorEncoding.RingU32:
                    break;
                default:
                    throw new TransferException($"Tensor '{tensor.Name}' uses encoding {tensor.Encoding}, which this peer does not decode.");
            }
        }

        return payload;
    }

    /// <summary>The named tensor, dense or codec-encoded, checked to hold <paramref name="expectedLength"/> floats (when not negative).</summary>
    /// <exception cref="TransferException">Missing tensor, or one of another length.</exception>
    public static NamedTensor GetTensor(Payload payload, string name, long expectedLength = -1)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var tensor = payload.Tensors.FirstOrDefault(t => t.Name == name)
            ?? throw new TransferException($"The payload has no tensor '{name}'.");
        var elements = ElementCount(tensor);
        if (expectedLength >= 0 && elements != expectedLength)
        {
            throw new TransferException(StatusCode.FailedPrecondition, $"Tensor '{name}' has {elements} values; the model's layout needs {expectedLength}.");
        }

        return tensor;
    }

    /// <summary>The named dense tensor as floats.</summary>
    /// <exception cref="TransferException">Missing tensor, one whose length is not <paramref name="expectedLength"/>, or a codec-encoded one.</exception>
    public static float[] ReadDense(Payload payload, string name, long expectedLength = -1) =>
        DenseValues(GetTensor(payload, name, expectedLength));

    /// <summary>All tensors except <paramref name="exclude"/>, by name; each must be dense.</summary>
    /// <exception cref="TransferException">One of them is codec-encoded (only the model tensor may be).</exception>
    public static Dictionary<string, float[]> ReadAllDense(Payload payload, string? exclude = null)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return payload.Tensors.Where(t => t.Name != exclude).ToDictionary(t => t.Name, DenseValues, StringComparer.Ordinal);
    }

    private static float[] DenseValues(NamedTensor tensor) => tensor.Encoding == TensorEncoding.DenseF32
        ? MemoryMarshal.Cast<byte, float>(tensor.Data.Span).ToArray()
        : throw new TransferException($"Tensor '{tensor.Name}' is {tensor.Encoding}-encoded where a dense float32 tensor is expected.");

    private static long ElementCount(NamedTensor tensor)
    {
        long elements = 1;
        foreach (var d in tensor.Shape)
        {
            if (d < 0)
            {
                throw new TransferException($"Tensor '{tensor.Name}' has a negative dimension.");
            }

            try
            {
                elements = checked(elements * d);
            }
            catch (OverflowException)
            {
                throw new TransferException($"Tensor '{tensor.Name}' has a shape whose element count overflows.");
            }
        }

        return elements;
    }

    private static uint CodecElementCount(ReadOnlySpan<byte> encoded) => BinaryPrimitives.ReadUInt32LittleEndian(encoded[2..]);
}
