using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using Federated.Learning.Data.Partitioning;

namespace Federated.Learning.Compression;

/// <summary>How a sparse payload carries its k indices.</summary>
internal enum SparseIndexFormat : byte
{
    /// <summary>A uint32 byte length, then LEB128 varints: the first index, then each gap to the next (≥ 1).</summary>
    Varint = 0,

    /// <summary>n bits, element i in bit i % 8 of byte i / 8, exactly k of them set, spare bits zero.</summary>
    Bitmap = 1,

    /// <summary>A uint64 seed: the indices are the uniform k-subset <see cref="SparseIndices.SampleUniform"/> draws from it.</summary>
    Seeded = 2,
}

/// <summary>Index selection and encoding for the sparse codecs.</summary>
internal static class SparseIndices
{
    /// <summary>Bytes of the varint encoding of sorted, distinct <paramref name="indices"/>.</summary>
    public static long VarintLength(ReadOnlySpan<int> indices)
    {
        long total = 0;
        var previous = 0;
        foreach (var index in indices)
        {
            total += VarintSize((uint)(index - previous));
            previous = index;
        }

        return total;
    }

    /// <summary>Writes the varint encoding (exactly <see cref="VarintLength"/> bytes).</summary>
    public static void WriteVarints(ReadOnlySpan<int> indices, Span<byte> destination)
    {
        var position = 0;
        var previous = 0;
        foreach (var index in indices)
        {
            var gap = (uint)(index - previous);
            while (gap >= 0x80)
            {
                destination[position++] = (byte)(gap | 0x80);
                gap >>= 7;
            }

            destination[position++] = (byte)gap;
            previous = index;
        }
    }

    /// <summary>Writes the bitmap of <paramref name="indices"/> into <paramref name="destination"/> (ceil(n/8) bytes).</summary>
    public static void WriteBitmap(ReadOnlySpan<int> indices, Span<byte> destination)
    {
        destination.Clear();
        foreach (var index in indices)
        {
            destination[index >> 3] |= (byte)(1 << (index & 7));
        }
    }

    /// <summary>
    /// Marks a uniformly random k-subset of [0, n) in <paramref name="bitmap"/> (Floyd's algorithm: k draws, each
    /// subset equally likely, so every coordinate is kept with probability exactly k/n).
    /// </summary>
    public static void SampleUniform(ulong seed, int n, int k, Span<byte> bitmap)
    {
        bitmap.Clear();
        var random = new StableRandom(seed);
        for (var j = n - k; j < n; j++)
        {
            var t = random.Next(j + 1);
            if ((bitmap[t >> 3] & (1 << (t & 7))) != 0)
            {
                t = j;
            }

            bitmap[t >> 3] |= (byte)(1 << (t & 7));
        }
    }

    /// <summary>Writes the set bits of <paramref name="bitmap"/> in increasing order; returns how many.</summary>
    public static int Collect(ReadOnlySpan<byte> bitmap, Span<int> indices)
    {
        var count = 0;
        for (var b = 0; b < bitmap.Length; b++)
        {
            uint bits = bitmap[b];
            while (bits != 0)
            {
                indices[count++] = (b << 3) + BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
            }
        }

        return count;
    }

    /// <summary>
    /// The indices of the k largest |x| in increasing order, ties broken towards the lower index. A radix select on
    /// the magnitude bits: a histogram of the top 16 bits, one of the low 15 inside the boundary bucket, then one
    /// pass that keeps what lies above the threshold and the first ties at it. O(n), no copy of the input.
    /// </summary>
    public static void SelectLargest(ReadOnlySpan<float> x, Span<int> indices)
    {
        var k = indices.Length;
        if (k == 0)
        {
            return;
        }

        if (k == x.Length)
        {
            for (var i = 0; i < k; i++)
            {
                indices[i] = i;
            }

            return;
        }

        var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(x);
        var rented = ArrayPool<int>.Shared.Rent(1 << 16);
        try
        {
            var histogram = rented.AsSpan(0, 1 << 16);
            histogram.Clear();
            foreach (var b in bits)
            {
                histogram[(int)((b & 0x7FFF_FFFF) >> 15)]++;
            }

            var remaining = k;
            var high = histogram.Length - 1;
            while (histogram[high] < remaining)
            {
                remaining -= histogram[high--];
            }

            var low = histogram[..(1 << 15)];
            low.Clear();
            foreach (var b in bits)
            {
                var magnitude = b & 0x7FFF_FFFF;
                if ((magnitude >> 15) == (uint)high)
                {
                    low[(int)(magnitude & 0x7FFF)]++;
                }
            }

            var bucket = low.Length - 1;
            while (low[bucket] < remaining)
            {
                remaining -= low[bucket--];
            }

            var threshold = ((uint)high << 15) | (uint)bucket;
            var ties = remaining;
            var count = 0;
            for (var i = 0; i < bits.Length; i++)
            {
                var magnitude = bits[i] & 0x7FFF_FFFF;
                if (magnitude > threshold || (magnitude == threshold && ties-- > 0))
                {
                    indices[count++] = i;
                }
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    private static int VarintSize(uint value) => value switch
    {
        < 1u << 7 => 1,
        < 1u << 14 => 2,
        < 1u << 21 => 3,
        < 1u << 28 => 4,
        _ => 5,
    };
}

/// <summary>
/// Reads a sparse payload's indices in order, checking each (in range, strictly increasing, well-formed varints; for
/// bitmaps exactly k bits and zero padding). Owns a pooled copy of the index section, so a streaming decoder can
/// keep it while the values arrive.
/// </summary>
internal sealed class SparseIndexReader : IDisposable
{
    private readonly byte[] _section;
    private readonly int _length;
    private readonly bool _bitmap;
    private readonly int _count;
    private readonly int _k;
    private int _position;
    private long _last;
    private int _produced;
    private int _wordIndex;
    private ulong _word;

    private SparseIndexReader(byte[] section, int length, bool bitmap, int count, int k)
    {
        _section = section;
        _length = length;
        _bitmap = bitmap;
        _count = count;
        _k = k;
        Reset();
    }

    /// <summary>A reader over a copy of a varint or bitmap index section; call <see cref="Validate"/> before use.</summary>
    public static SparseIndexReader FromSection(ReadOnlySpan<byte> section, SparseIndexFormat format, int count, int k)
    {
        var copy = ArrayPool<byte>.Shared.Rent(Math.Max(1, section.Length));
        section.CopyTo(copy);
        return new SparseIndexReader(copy, section.Length, format == SparseIndexFormat.Bitmap, count, k);
    }

    /// <summary>A reader over the bitmap that <paramref name="seed"/> draws (valid by construction).</summary>
    public static SparseIndexReader FromSeed(ulong seed, int count, int k)
    {
        var length = (int)((count + 7L) / 8);
        var bitmap = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        SparseIndices.SampleUniform(seed, count, k, bitmap.AsSpan(0, length));
        return new SparseIndexReader(bitmap, length, bitmap: true, count, k);
    }

    /// <summary>Walks all k indices; throws <see cref="CodecException"/> at the first problem. Leaves the reader at the start.</summary>
    public void Validate()
    {
        if (_bitmap)
        {
            ValidateBitmap();
        }
        else
        {
            Span<int> batch = stackalloc int[256];
            for (var done = 0; done < _k; done += batch.Length)
            {
                Next(batch[..Math.Min(batch.Length, _k - done)]);
            }

            if (_position != _length)
            {
                throw new CodecException($"The index section has {_length - _position} byte(s) after the last of its {_k} indices.");
            }
        }

        Reset();
    }

    /// <summary>Writes the next <paramref name="destination"/>.Length indices.</summary>
    public void Next(Span<int> destination)
    {
        if (destination.Length > _k - _produced)
        {
            throw new InvalidOperationException($"Only {_k - _produced} of {_k} indices are left.");
        }

        if (_bitmap)
        {
            for (var i = 0; i < destination.Length; i++)
            {
                while (_word == 0)
                {
                    if ((++_wordIndex * 8L) >= _length)
                    {
                        throw new InvalidOperationException("The index bitmap has fewer set bits than it was validated for.");
                    }

                    _word = Word(_wordIndex);
                }

                destination[i] = (_wordIndex << 6) + BitOperations.TrailingZeroCount(_word);
                _word &= _word - 1;
            }
        }
        else
        {
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = NextVarint(_produced + i);
            }
        }

        _produced += destination.Length;
    }

    /// <inheritdoc />
    public void Dispose() => ArrayPool<byte>.Shared.Return(_section);

    private void Reset()
    {
        _position = 0;
        _last = 0;
        _produced = 0;
        _wordIndex = 0;
        _word = _bitmap ? Word(0) : 0;
    }

    private int NextVarint(int ordinal)
    {
        uint value = 0;
        for (var shift = 0; ; shift += 7)
        {
            if (_position >= _length)
            {
                throw new CodecException($"The index section ends inside index {ordinal} of {_k}.");
            }

            var b = _section[_position++];
            if (shift == 28 && b > 0x0F)
            {
                throw new CodecException($"Index {ordinal}'s varint is longer than 32 bits.");
            }

            value |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                break;
            }
        }

        var first = ordinal == 0;
        if (!first && value == 0)
        {
            throw new CodecException($"Index {ordinal} repeats index {_last}; indices must be strictly increasing.");
        }

        var index = first ? value : _last + value;
        if (index >= _count)
        {
            throw new CodecException($"Index {ordinal} is {index}, out of range for {_count} elements.");
        }

        _last = index;
        return (int)index;
    }

    private void ValidateBitmap()
    {
        var spare = (int)((_length * 8L) - _count);
        if (spare > 0 && (_section[_length - 1] >> (8 - spare)) != 0)
        {
            throw new CodecException($"The index bitmap sets bits past element {_count - 1}.");
        }

        long set = 0;
        for (var w = 0; w * 8 < _length; w++)
        {
            set += BitOperations.PopCount(Word(w));
        }

        if (set != _k)
        {
            throw new CodecException($"The index bitmap sets {set} bits but the payload keeps {_k} values.");
        }
    }

    private ulong Word(int index)
    {
        var start = index * 8;
        if (start + 8 <= _length)
        {
            return BinaryPrimitives.ReadUInt64LittleEndian(_section.AsSpan(start));
        }

        ulong word = 0;
        for (var b = start; b < _length; b++)
        {
            word |= (ulong)_section[b] << ((b - start) * 8);
        }

        return word;
    }
}
