using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Federated.Learning.Compression;

/// <summary>
/// The codecs' hot loops over spans: eight floats per <see cref="Vector256{T}"/> step, a scalar or padded tail that
/// computes exactly what the vector step computes, and no allocation. Multiplies and adds are never fused, so
/// every machine decodes the same bytes to the same floats.
/// </summary>
internal static class CodecKernels
{
    /// <summary>Byte b → the two 4-bit codes it packs, as the little-endian bytes of a ushort.</summary>
    private static readonly ushort[] NibblePairs = BuildNibblePairs();

    /// <summary>Byte b → the four 2-bit codes it packs, as the little-endian bytes of a uint.</summary>
    private static readonly uint[] CrumbQuads = BuildCrumbQuads();

    private static readonly Vector256<uint> LaneBits = Vector256.Create(1u, 2, 4, 8, 16, 32, 64, 128);

    /// <summary>True when every value is finite (and for an empty span, unlike <see cref="TensorPrimitives.IsFiniteAll{T}(ReadOnlySpan{T})"/>).</summary>
    public static bool AllFinite(ReadOnlySpan<float> values) => values.IsEmpty || TensorPrimitives.IsFiniteAll(values);

    // ---- scales ----

    public static float ReadScale(ReadOnlySpan<byte> unit) => BinaryPrimitives.ReadSingleLittleEndian(unit);

    public static void WriteScale(Span<byte> unit, float scale) => BinaryPrimitives.WriteSingleLittleEndian(unit, scale);

    /// <summary>Throws unless <paramref name="scale"/> is finite and non-negative.</summary>
    public static void CheckScale(float scale, string codec, int block)
    {
        if (!float.IsFinite(scale) || scale < 0)
        {
            throw new CodecException($"{codec} block {block} has the scale {scale}; scales must be finite and non-negative.");
        }
    }

    /// <summary>Throws unless the bits after the last of <paramref name="usedBits"/> in <paramref name="packed"/> are zero.</summary>
    public static void CheckPadding(ReadOnlySpan<byte> packed, long usedBits, string codec, int block)
    {
        var spare = (int)((packed.Length * 8L) - usedBits);
        if (spare > 0 && (packed[^1] >> (8 - spare)) != 0)
        {
            throw new CodecException($"{codec} block {block} has non-zero padding bits after its last code.");
        }
    }

    // ---- stochastic quantisation ----

    /// <summary>
    /// codes[i] = clamp(floor(x[i]·pre·inv + uᵢ), −L, L) + L with uᵢ uniform in [0, 1): stochastic rounding, so the
    /// expected code is x·pre·inv + L exactly (pre is 1, or a power of two that keeps inv finite for tiny scales).
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> x, float pre, float inv, int levels, ref UniformLanes lanes, Span<byte> codes)
    {
        var rng = lanes;
        var vPre = Vector256.Create(pre);
        var vInv = Vector256.Create(inv);
        var vMin = Vector256.Create((float)-levels);
        var vMax = Vector256.Create((float)levels);
        var vOffset = Vector256.Create(levels);
        ref var source = ref MemoryMarshal.GetReference(x);
        ref var target = ref MemoryMarshal.GetReference(codes);
        var i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            var q = QuantizeEight(Vector256.LoadUnsafe(ref source, (nuint)i), vPre, vInv, vMin, vMax, vOffset, ref rng);
            StoreLowBytes(q, ref Unsafe.Add(ref target, i));
        }

        if (i < x.Length)
        {
            Span<float> tail = stackalloc float[8];
            tail.Clear();
            x[i..].CopyTo(tail);
            Span<byte> bytes = stackalloc byte[8];
            var q = QuantizeEight(Vector256.Create<float>(tail), vPre, vInv, vMin, vMax, vOffset, ref rng);
            StoreLowBytes(q, ref bytes[0]);
            bytes[..(x.Length - i)].CopyTo(codes[i..]);
        }

        lanes = rng;
    }

    /// <summary>destination[i] = (codes[i] − L) · factor; with <paramref name="add"/>, destination[i] += that instead.</summary>
    public static void Dequantize(ReadOnlySpan<byte> codes, float factor, int levels, Span<float> destination, bool add)
    {
        var vFactor = Vector256.Create(factor);
        var vLevels = Vector256.Create((float)levels);
        ref var source = ref MemoryMarshal.GetReference(codes);
        ref var target = ref MemoryMarshal.GetReference(destination);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= destination.Length - 8; i += 8)
            {
                var value = (WidenEight(ref Unsafe.Add(ref source, i)) - vLevels) * vFactor;
                if (add)
                {
                    value = Vector256.LoadUnsafe(ref target, (nuint)i) + value;
                }

                value.StoreUnsafe(ref target, (nuint)i);
            }
        }

        for (; i < destination.Length; i++)
        {
            var value = (codes[i] - (float)levels) * factor;
            destination[i] = add ? destination[i] + value : value;
        }
    }

    // ---- bit packing of 4- and 2-bit codes (element i of a byte's group in its low bits first) ----

    /// <summary>Packs one code per byte into <paramref name="bits"/>-bit fields; the last byte's spare bits are zero.</summary>
    public static void Pack(ReadOnlySpan<byte> codes, int bits, Span<byte> packed)
    {
        var perByte = 8 / bits;
        var full = codes.Length / perByte;
        if (bits == 4)
        {
            for (var j = 0; j < full; j++)
            {
                packed[j] = (byte)(codes[2 * j] | (codes[(2 * j) + 1] << 4));
            }
        }
        else
        {
            for (var j = 0; j < full; j++)
            {
                var c = BinaryPrimitives.ReadUInt32LittleEndian(codes[(4 * j)..]);
                packed[j] = (byte)((c & 0x3) | ((c >> 6) & 0xC) | ((c >> 12) & 0x30) | ((c >> 18) & 0xC0));
            }
        }

        if (full * perByte < codes.Length)
        {
            var last = 0;
            for (var i = full * perByte; i < codes.Length; i++)
            {
                last |= codes[i] << ((i - (full * perByte)) * bits);
            }

            packed[full] = (byte)last;
        }
    }

    /// <summary>Unpacks <paramref name="codes"/>.Length codes of <paramref name="bits"/> bits, one per byte.</summary>
    public static void Unpack(ReadOnlySpan<byte> packed, int bits, Span<byte> codes)
    {
        var perByte = 8 / bits;
        var full = codes.Length / perByte;
        ref var target = ref MemoryMarshal.GetReference(codes);
        if (bits == 4)
        {
            var table = NibblePairs;
            for (var j = 0; j < full; j++)
            {
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, 2 * j), table[packed[j]]);
            }
        }
        else
        {
            var table = CrumbQuads;
            for (var j = 0; j < full; j++)
            {
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, 4 * j), table[packed[j]]);
            }
        }

        var mask = (1 << bits) - 1;
        for (var i = full * perByte; i < codes.Length; i++)
        {
            codes[i] = (byte)((packed[full] >> ((i - (full * perByte)) * bits)) & mask);
        }
    }

    /// <summary>The first element whose <paramref name="bits"/>-bit code is all ones (the reserved code), or −1.</summary>
    public static int FindReservedCode(ReadOnlySpan<byte> packed, int bits)
    {
        if (!HasAllOnesField(packed, bits))
        {
            return -1;
        }

        var perByte = 8 / bits;
        var mask = (1 << bits) - 1;
        for (var j = 0; j < packed.Length; j++)
        {
            for (var f = 0; f < perByte; f++)
            {
                if (((packed[j] >> (f * bits)) & mask) == mask)
                {
                    return (j * perByte) + f;
                }
            }
        }

        return -1;
    }

    private static bool HasAllOnesField(ReadOnlySpan<byte> packed, int bits)
    {
        if (bits == 8)
        {
            return packed.Contains((byte)0xFF);
        }

        // 4 bits: a nibble is all ones when b & b>>1 & b>>2 & b>>3 has its low bit set (mask 0x11);
        // 2 bits: when b & b>>1 does (mask 0x55). Shifts stay inside each byte for the masked bits.
        var fieldMask = (byte)(bits == 4 ? 0x11 : 0x55);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vMask = Vector256.Create(fieldMask);
            ref var source = ref MemoryMarshal.GetReference(packed);
            var any = Vector256<byte>.Zero;
            for (; i <= packed.Length - 32; i += 32)
            {
                var v = Vector256.LoadUnsafe(ref source, (nuint)i);
                var t = v & Vector256.ShiftRightLogical(v, 1);
                if (bits == 4)
                {
                    t &= Vector256.ShiftRightLogical(t, 2);
                }

                any |= t & vMask;
            }

            if (any != Vector256<byte>.Zero)
            {
                return true;
            }
        }

        for (; i < packed.Length; i++)
        {
            var b = packed[i];
            var t = b & (b >> 1);
            if (bits == 4)
            {
                t &= t >> 2;
            }

            if ((t & fieldMask) != 0)
            {
                return true;
            }
        }

        return false;
    }

    // ---- sign ----

    /// <summary>Packs the sign bits of <paramref name="x"/>, element 8j+t in bit t of byte j (1 = negative).</summary>
    public static void PackSigns(ReadOnlySpan<float> x, Span<byte> packed)
    {
        ref var source = ref MemoryMarshal.GetReference(x);
        var i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            packed[i >> 3] = (byte)Vector256.ExtractMostSignificantBits(Vector256.LoadUnsafe(ref source, (nuint)i));
        }

        if (i < x.Length)
        {
            var last = 0;
            for (var t = 0; i + t < x.Length; t++)
            {
                last |= (BitConverter.SingleToInt32Bits(x[i + t]) < 0 ? 1 : 0) << t;
            }

            packed[i >> 3] = (byte)last;
        }
    }

    /// <summary>destination[i] = ±scale by the sign bits (set = negative); with <paramref name="add"/>, adds instead.</summary>
    public static void ExpandSigns(ReadOnlySpan<byte> packed, float scale, Span<float> destination, bool add)
    {
        var vScale = Vector256.Create(scale).AsUInt32();
        var signBit = Vector256.Create(0x8000_0000u);
        ref var target = ref MemoryMarshal.GetReference(destination);
        var i = 0;
        for (; i <= destination.Length - 8; i += 8)
        {
            var lanes = Vector256.Create((uint)packed[i >> 3]) & LaneBits;
            var value = (vScale ^ (Vector256.Equals(lanes, LaneBits) & signBit)).AsSingle();
            if (add)
            {
                value += Vector256.LoadUnsafe(ref target, (nuint)i);
            }

            value.StoreUnsafe(ref target, (nuint)i);
        }

        for (; i < destination.Length; i++)
        {
            var value = ((packed[i >> 3] >> (i & 7)) & 1) != 0 ? -scale : scale;
            destination[i] = add ? destination[i] + value : value;
        }
    }

    // ---- bfloat16 and the 16-bit float checks ----

    /// <summary>bfloat16 of each value, round-to-nearest-even, saturating at ±3.3895314e38 (inputs are finite).</summary>
    public static void ToBFloat16(ReadOnlySpan<float> x, Span<ushort> destination)
    {
        ref var source = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(x));
        ref var target = ref MemoryMarshal.GetReference(destination);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256.Create(1u);
            var bias = Vector256.Create(0x7FFFu);
            var magnitude = Vector256.Create(0x7FFFu);
            var infinity = Vector256.Create(0x7F80u);
            var largest = Vector256.Create(0x7F7Fu);
            var sign = Vector256.Create(0x8000u);
            for (; i <= x.Length - 8; i += 8)
            {
                var bits = Vector256.LoadUnsafe(ref source, (nuint)i);
                var rounded = (bits + bias + ((bits >>> 16) & one)) >>> 16;
                var overflow = Vector256.Equals(rounded & magnitude, infinity);
                rounded = Vector256.ConditionalSelect(overflow, (rounded & sign) | largest, rounded);
                Vector256.Narrow(rounded, rounded).GetLower().StoreUnsafe(ref target, (nuint)i);
            }
        }

        for (; i < x.Length; i++)
        {
            destination[i] = ToBFloat16(BitConverter.SingleToUInt32Bits(x[i]));
        }
    }

    /// <summary>destination[i] = the float of bfloat16 bits; with <paramref name="add"/>: accumulator += factor · value.</summary>
    public static void FromBFloat16(ReadOnlySpan<ushort> values, Span<float> destination, float factor, bool add)
    {
        ref var source = ref MemoryMarshal.GetReference(values);
        ref var target = ref MemoryMarshal.GetReference(destination);
        var vFactor = Vector256.Create(factor);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= destination.Length - 8; i += 8)
            {
                var value = (Vector256.WidenLower(Vector128.LoadUnsafe(ref source, (nuint)i).ToVector256Unsafe()) << 16).AsSingle();
                if (add)
                {
                    value = Vector256.LoadUnsafe(ref target, (nuint)i) + (value * vFactor);
                }

                value.StoreUnsafe(ref target, (nuint)i);
            }
        }

        for (; i < destination.Length; i++)
        {
            var value = BitConverter.UInt32BitsToSingle((uint)values[i] << 16);
            destination[i] = add ? destination[i] + (value * factor) : value;
        }
    }

    /// <summary>The first 16-bit float whose exponent field (<paramref name="exponentMask"/>) is all ones (NaN or ±∞), or −1.</summary>
    public static int FindNonFinite16(ReadOnlySpan<ushort> values, ushort exponentMask)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var mask = Vector256.Create(exponentMask);
            ref var source = ref MemoryMarshal.GetReference(values);
            for (; i <= values.Length - 16; i += 16)
            {
                if (Vector256.EqualsAny(Vector256.LoadUnsafe(ref source, (nuint)i) & mask, mask))
                {
                    break;
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if ((values[i] & exponentMask) == exponentMask)
            {
                return i;
            }
        }

        return -1;
    }

    private static ushort ToBFloat16(uint bits)
    {
        var rounded = (bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16;
        return (ushort)((rounded & 0x7FFF) == 0x7F80 ? (rounded & 0x8000) | 0x7F7F : rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> QuantizeEight(
        Vector256<float> x, Vector256<float> pre, Vector256<float> inv, Vector256<float> min, Vector256<float> max, Vector256<int> offset, ref UniformLanes rng)
    {
        var q = Vector256.Floor(((x * pre) * inv) + rng.Next());
        return Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(q, min), max)) + offset;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLowBytes(Vector256<int> values, ref byte destination)
    {
        var words = Vector256.Narrow(values.AsUInt32(), values.AsUInt32());
        var bytes = Vector256.Narrow(words, words);
        Unsafe.WriteUnaligned(ref destination, bytes.AsUInt64().ToScalar());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WidenEight(ref byte source)
    {
        var bytes = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(ref source)).AsByte();
        var ints = Avx2.IsSupported
            ? Avx2.ConvertToVector256Int32(bytes)
            : Vector256.WidenLower(Vector128.WidenLower(bytes).ToVector256Unsafe()).AsInt32();
        return Vector256.ConvertToSingle(ints);
    }

    private static ushort[] BuildNibblePairs()
    {
        var table = new ushort[256];
        for (var b = 0; b < 256; b++)
        {
            table[b] = BitConverter.IsLittleEndian ? (ushort)((b & 0xF) | ((b >> 4) << 8)) : (ushort)(((b & 0xF) << 8) | (b >> 4));
        }

        return table;
    }

    private static uint[] BuildCrumbQuads()
    {
        var table = new uint[256];
        for (var b = 0; b < 256; b++)
        {
            Span<byte> codes = [(byte)(b & 3), (byte)((b >> 2) & 3), (byte)((b >> 4) & 3), (byte)(b >> 6)];
            table[b] = MemoryMarshal.Read<uint>(codes);
        }

        return table;
    }
}
