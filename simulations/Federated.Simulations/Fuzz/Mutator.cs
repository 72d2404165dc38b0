using System.Buffers.Binary;
using Federated.Learning.Data.Partitioning;

namespace Federated.Simulations.Fuzz;

/// <summary>
/// Byte-level mutations in the manner of libFuzzer's and AFL's havoc stage: bit flips, interesting bytes and integers
/// (the places where lengths, counts, scales and varints live), insertions, deletions, duplicated and spliced ranges,
/// truncation and random tails. Deterministic for a seed.
/// </summary>
internal sealed class Mutator(ulong seed)
{
    private const int MaxLength = 1 << 16;

    private static readonly byte[] InterestingBytes = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40];

    private static readonly long[] InterestingIntegers =
    [
        0, 1, -1, 2, 16, 127, 128, 255, 256, 1024, 4096, 65535, 65536, int.MaxValue, int.MinValue, uint.MaxValue,
        long.MaxValue, long.MinValue, 1L << 30, 1L << 31, 1L << 32,
    ];

    private readonly StableRandom _random = new(seed);

    /// <summary>A random integer in [0, <paramref name="maxExclusive"/>).</summary>
    public int Next(int maxExclusive) => _random.Next(maxExclusive);

    /// <summary>One of the interesting integers (0, ±1, powers of two, the limits of 32- and 64-bit types).</summary>
    public long Interesting() => InterestingIntegers[_random.Next(InterestingIntegers.Length)];

    /// <summary>Random bytes of a random length up to <paramref name="maxLength"/>.</summary>
    public byte[] RandomBytes(int maxLength)
    {
        var bytes = new byte[_random.Next(maxLength + 1)];
        Fill(bytes);
        return bytes;
    }

    /// <summary>A mutated copy of <paramref name="input"/>: one to five edits, some splicing in <paramref name="other"/>.</summary>
    public byte[] Mutate(byte[] input, byte[] other)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(other);
        var bytes = new List<byte>(input);
        var edits = 1 + _random.Next(5);
        for (var e = 0; e < edits; e++)
        {
            Edit(bytes, other);
        }

        if (bytes.Count > MaxLength)
        {
            bytes.RemoveRange(MaxLength, bytes.Count - MaxLength);
        }

        return [.. bytes];
    }

    private void Edit(List<byte> bytes, byte[] other)
    {
        // Edits near the start hit headers, lengths and tags more often than a uniform position would.
        int Position(int count) => count == 0 ? 0 : _random.Next(2) == 0 ? _random.Next(Math.Min(count, 32)) : _random.Next(count);

        switch (_random.Next(12))
        {
            case 0 when bytes.Count > 0: // flip a bit
                var bit = _random.Next(bytes.Count * 8);
                bytes[bit / 8] ^= (byte)(1 << (bit % 8));
                break;
            case 1 when bytes.Count > 0: // a random byte
                bytes[Position(bytes.Count)] = (byte)_random.Next(256);
                break;
            case 2 when bytes.Count > 0: // an interesting byte
                bytes[Position(bytes.Count)] = InterestingBytes[_random.Next(InterestingBytes.Length)];
                break;
            case 3 when bytes.Count >= 4: // an interesting 32- or 64-bit integer, either endianness
                WriteInteger(bytes, Position(bytes.Count - 3));
                break;
            case 4: // insert random bytes
                var insert = new byte[1 + _random.Next(16)];
                Fill(insert);
                bytes.InsertRange(Position(bytes.Count + 1), insert);
                break;
            case 5 when bytes.Count > 0: // delete a range
                var from = Position(bytes.Count);
                bytes.RemoveRange(from, 1 + _random.Next(Math.Min(64, bytes.Count - from)));
                break;
            case 6 when bytes.Count > 0: // duplicate a range
                var start = _random.Next(bytes.Count);
                var range = bytes.GetRange(start, 1 + _random.Next(Math.Min(256, bytes.Count - start)));
                bytes.InsertRange(_random.Next(bytes.Count + 1), range);
                break;
            case 7: // truncate
                var keep = _random.Next(bytes.Count + 1);
                bytes.RemoveRange(keep, bytes.Count - keep);
                break;
            case 8: // append a random tail
                var tail = new byte[1 + _random.Next(32)];
                Fill(tail);
                bytes.AddRange(tail);
                break;
            case 9 when other.Length > 0: // splice in a range of another corpus entry
                var at = _random.Next(other.Length);
                var piece = other.AsSpan(at, 1 + _random.Next(other.Length - at)).ToArray();
                var to = Position(bytes.Count + 1);
                bytes.RemoveRange(to, Math.Min(piece.Length, bytes.Count - to));
                bytes.InsertRange(to, piece);
                break;
            case 10 when bytes.Count > 0: // a protobuf-style varint of an interesting value
                var value = InterestingIntegers[_random.Next(InterestingIntegers.Length)];
                var varint = new List<byte>();
                var v = (ulong)value;
                do
                {
                    varint.Add((byte)((v & 0x7F) | (v > 0x7F ? 0x80UL : 0)));
                    v >>= 7;
                }
                while (v != 0);
                var p = Position(bytes.Count);
                bytes.RemoveRange(p, Math.Min(varint.Count, bytes.Count - p));
                bytes.InsertRange(p, varint);
                break;
            case 11 when bytes.Count > 1: // swap two bytes
                var i = _random.Next(bytes.Count);
                var j = _random.Next(bytes.Count);
                (bytes[i], bytes[j]) = (bytes[j], bytes[i]);
                break;
            default:
                bytes.Add((byte)_random.Next(256));
                break;
        }
    }

    private void WriteInteger(List<byte> bytes, int position)
    {
        var value = InterestingIntegers[_random.Next(InterestingIntegers.Length)];
        var wide = _random.Next(2) == 0 && position + 8 <= bytes.Count;
        Span<byte> buffer = stackalloc byte[8];
        if (_random.Next(2) == 0)
        {
            BinaryPrimitives.WriteInt64LittleEndian(buffer, value);
        }
        else
        {
            BinaryPrimitives.WriteInt64BigEndian(buffer, value);
            buffer = wide ? buffer : buffer[4..];
        }

        var width = wide ? 8 : 4;
        for (var k = 0; k < width; k++)
        {
            bytes[position + k] = buffer[k];
        }
    }

    private void Fill(Span<byte> bytes)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)_random.Next(256);
        }
    }
}
