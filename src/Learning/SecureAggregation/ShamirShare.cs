using System.Buffers.Binary;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// One Shamir share: the evaluation point <see cref="X"/> (≥ 1) and, for each field-sized chunk of the secret, the
/// value of that chunk's polynomial at <see cref="X"/> (elements of GF(2¹²⁷ − 1)).
/// </summary>
/// <param name="X">The evaluation point; in secure aggregation the holder's agent id + 1.</param>
/// <param name="Values">One field element per chunk of the secret.</param>
public sealed record ShamirShare(int X, UInt128[] Values)
{
    /// <summary>The encoded size in bytes of a share with <paramref name="chunks"/> chunks: the x (4 bytes) and 16 bytes per chunk.</summary>
    public static int EncodedSize(int chunks) => 4 + (16 * chunks);

    /// <summary>Writes the share (x, then each value, little-endian) into <paramref name="destination"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < EncodedSize(Values.Length))
        {
            throw new ArgumentException("The destination is too short for the share.", nameof(destination));
        }

        BinaryPrimitives.WriteInt32LittleEndian(destination, X);
        for (var i = 0; i < Values.Length; i++)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(destination[(4 + (16 * i))..], Values[i]);
        }
    }

    /// <summary>Reads a share of <paramref name="chunks"/> chunks written by <see cref="WriteTo"/>.</summary>
    public static ShamirShare Read(ReadOnlySpan<byte> source, int chunks)
    {
        if (source.Length < EncodedSize(chunks))
        {
            throw new ArgumentException("The source is too short for the share.", nameof(source));
        }

        var values = new UInt128[chunks];
        for (var i = 0; i < chunks; i++)
        {
            values[i] = BinaryPrimitives.ReadUInt128LittleEndian(source[(4 + (16 * i))..]);
        }

        return new ShamirShare(BinaryPrimitives.ReadInt32LittleEndian(source), values);
    }
}
