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

    /// <summary>The header an upload's first chunk carries.</summary>
    public UploadHeader ToUploadHeader(string taskId, int round) => new()
    {
        TaskId = taskId,
        Round = round,
        TotalBytes = Bytes.Length,
        ChunkCount = ChunkCount,
        Sha256 = ByteString.CopyFrom(Sha256),
    };
}

/// <summary>Builds and validates payloads of named dense float32 tensors.</summary>
public static class PayloadCodec
{
    /// <summary>The tensor name of a model or a model delta.</summary>
    public const string ModelTensor = "model";

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

            if (tensor.Encoding != TensorEncoding.DenseF32)
            {
                throw new TransferException($"Tensor '{tensor.Name}' uses encoding {tensor.Encoding}, which this peer does not decode.");
            }

            long elements = 1;
            foreach (var d in tensor.Shape)
            {
                if (d < 0)
                {
                    throw new TransferException($"Tensor '{tensor.Name}' has a negative dimension.");
                }

                elements = checked(elements * d);
            }

            if (tensor.Data.Length != elements * sizeof(float))
            {
                throw new TransferException($"Tensor '{tensor.Name}' declares {elements} floats but carries {tensor.Data.Length} bytes.");
            }
        }

        return payload;
    }

    /// <summary>The named dense tensor as floats.</summary>
    /// <exception cref="TransferException">Missing tensor, or one whose length is not <paramref name="expectedLength"/>.</exception>
    public static float[] ReadDense(Payload payload, string name, long expectedLength = -1)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var tensor = payload.Tensors.FirstOrDefault(t => t.Name == name)
            ?? throw new TransferException($"The payload has no tensor '{name}'.");
        var values = MemoryMarshal.Cast<byte, float>(tensor.Data.Span).ToArray();
        if (expectedLength >= 0 && values.Length != expectedLength)
        {
            throw new TransferException(StatusCode.FailedPrecondition, $"Tensor '{name}' has {values.Length} values; the model's layout needs {expectedLength}.");
        }

        return values;
    }

    /// <summary>All dense tensors except <paramref name="exclude"/>, by name.</summary>
    public static Dictionary<string, float[]> ReadAllDense(Payload payload, string? exclude = null)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return payload.Tensors.Where(t => t.Name != exclude)
            .ToDictionary(t => t.Name, t => MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray(), StringComparer.Ordinal);
    }
}
