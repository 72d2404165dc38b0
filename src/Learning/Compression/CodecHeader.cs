using System.Buffers.Binary;

namespace Federated.Learning.Compression;

/// <summary>
/// The 6 bytes every encoded delta starts with: codec id (1 byte), format version (1 byte) and element count
/// (uint32, little-endian). The codec's parameters follow, then its body, so a payload decodes without knowing
/// which codec the sender was configured with.
/// </summary>
/// <param name="Codec">The codec that wrote the payload.</param>
/// <param name="Version">The codec's wire-format version.</param>
/// <param name="ElementCount">The number of float32 elements the payload decodes to.</param>
public readonly record struct CodecHeader(CodecId Codec, int Version, int ElementCount)
{
    /// <summary>The header's size in bytes.</summary>
    public const int Size = 6;

    /// <summary>The wire-format version this build writes and reads, for every codec.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Reads the header at the start of <paramref name="encoded"/> without validating the rest.</summary>
    /// <exception cref="CodecException">Fewer than <see cref="Size"/> bytes, an unknown codec id or version, or a count above <see cref="int.MaxValue"/>.</exception>
    public static CodecHeader Read(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < Size)
        {
            throw new CodecException($"The payload is truncated: {encoded.Length} byte(s) is shorter than the {Size}-byte codec header.");
        }

        var id = encoded[0];
        if (!Enum.IsDefined((CodecId)id))
        {
            throw new CodecException($"Unknown codec id {id} (this build decodes ids 1 to {(int)CodecId.Sparse}).");
        }

        var codec = (CodecId)id;
        if (encoded[1] != CurrentVersion)
        {
            throw new CodecException($"Codec {codec} version {encoded[1]} is not supported (this build decodes version {CurrentVersion}).");
        }

        var count = BinaryPrimitives.ReadUInt32LittleEndian(encoded[2..]);
        if (count > int.MaxValue)
        {
            throw new CodecException($"The payload declares {count} elements, more than a vector can hold.");
        }

        return new CodecHeader(codec, CurrentVersion, (int)count);
    }

    internal static void Write(Span<byte> destination, CodecId codec, int elementCount)
    {
        destination[0] = (byte)codec;
        destination[1] = CurrentVersion;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[2..], (uint)elementCount);
    }
}
