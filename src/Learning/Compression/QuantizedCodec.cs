using System.Buffers.Binary;
using System.Globalization;
using System.Numerics.Tensors;

namespace Federated.Learning.Compression;

/// <summary>
/// QSGD-style stochastic uniform quantisation to b ∈ {8, 4, 2} bits with a float32 scale s = max |x| per block.
/// With L = 2^(b−1) − 1 levels a side, x ↦ q = floor(x·L/s + u), u ~ U[0, 1), so q ∈ [−L, L], E[q] = x·L/s and
/// decode(q) = q·s/L is unbiased with |error| &lt; s/L per element. Codes are stored as q + L in b bits (all ones is
/// reserved and rejected), packed low bits first; each block is [scale][codes, padded to a byte].
/// </summary>
/// <remarks>Wire parameters: bits (1 byte), block size (uint32). 2 bits gives the ternary {−s, 0, s}.</remarks>
internal sealed class QuantizedCodec : DenseCodec
{
    /// <summary>The default elements per scale.</summary>
    public const int DefaultBlockSize = 512;

    /// <summary>The largest block size accepted.</summary>
    public const int MaxBlockSize = 1 << 24;

    /// <summary>The parameter bytes after the header.</summary>
    public const int WireParameterBytes = 5;

    /// <summary>Codes per stack chunk when packing or unpacking 4- and 2-bit codes (a multiple of 8).</summary>
    private const int Chunk = 256;

    /// <summary>Scales below this are lifted by <see cref="Lift"/> so that L/s stays finite.</summary>
    private const float TinyScale = 7.888609e-31f; // 2^-100

    private const float Lift = 18446744073709551616f; // 2^64

    public QuantizedCodec(int bits, int blockSize)
    {
        if (!IsValidBits(bits))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Quantisation takes 8, 4 or 2 bits.");
        }

        if (blockSize is < 1 or > MaxBlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, $"The quantisation block size must be between 1 and {MaxBlockSize}.");
        }

        Bits = bits;
        BlockSize = blockSize;
        Levels = (1 << (bits - 1)) - 1;
    }

    public int Bits { get; }

    public int BlockSize { get; }

    /// <summary>L: the codes run from −L to L.</summary>
    public int Levels { get; }

    public override string Name => $"q{Bits}";

    public override string Spec => string.Create(CultureInfo.InvariantCulture, $"{Name}:block={BlockSize}");

    public override CodecId Id => CodecId.Quantized;

    public override bool IsUnbiased => true;

    public override int ParameterBytes => WireParameterBytes;

    public static bool IsValidBits(int bits) => bits is 8 or 4 or 2;

    public static QuantizedCodec FromWire(ReadOnlySpan<byte> parameters)
    {
        var bits = parameters[0];
        var block = BinaryPrimitives.ReadUInt32LittleEndian(parameters[1..]);
        if (!IsValidBits(bits))
        {
            throw new CodecException($"A quantised payload declares {bits} bits; this build decodes 8, 4 and 2.");
        }

        if (block is < 1 or > MaxBlockSize)
        {
            throw new CodecException($"A quantised payload declares the block size {block}; it must be between 1 and {MaxBlockSize}.");
        }

        return new QuantizedCodec(bits, (int)block);
    }

    public override int UnitElements(int count) => Math.Max(1, Math.Min(BlockSize, count));

    public override int UnitBytes(int elements) => sizeof(float) + (int)((((long)elements * Bits) + 7) / 8);

    public override void WriteParameters(Span<byte> destination, int count)
    {
        destination[0] = (byte)Bits;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[1..], (uint)BlockSize);
    }

    public override void EncodeUnit(ReadOnlySpan<float> input, Span<byte> destination, CodecRandom random)
    {
        var scale = Math.Abs(TensorPrimitives.MaxMagnitude(input));
        if (!float.IsFinite(scale))
        {
            RequireFinite(input, nameof(input));
        }

        CodecKernels.WriteScale(destination, scale);
        var (pre, inv) = scale == 0 ? (1f, 0f) : scale < TinyScale ? (Lift, Levels / (scale * Lift)) : (1f, Levels / scale);
        var codes = destination[sizeof(float)..];
        if (Bits == 8)
        {
            CodecKernels.Quantize(input, pre, inv, Levels, ref random.Lanes, codes);
            return;
        }

        Span<byte> chunk = stackalloc byte[Chunk];
        for (var start = 0; start < input.Length; start += Chunk)
        {
            var length = Math.Min(Chunk, input.Length - start);
            CodecKernels.Quantize(input.Slice(start, length), pre, inv, Levels, ref random.Lanes, chunk[..length]);
            CodecKernels.Pack(chunk[..length], Bits, codes.Slice(start * Bits / 8, ((length * Bits) + 7) / 8));
        }
    }

    public override void ValidateUnit(ReadOnlySpan<byte> unit, int elements, int unitIndex, int firstElement)
    {
        CodecKernels.CheckScale(CodecKernels.ReadScale(unit), Name, unitIndex);
        var codes = unit[sizeof(float)..];
        CodecKernels.CheckPadding(codes, (long)elements * Bits, Name, unitIndex);
        var reserved = CodecKernels.FindReservedCode(codes, Bits);
        if (reserved >= 0)
        {
            throw new CodecException($"{Name} block {unitIndex} holds the reserved code {(1 << Bits) - 1} at element {firstElement + reserved}.");
        }
    }

    public override void DecodeUnit(ReadOnlySpan<byte> unit, Span<float> destination) =>
        Expand(unit, destination, CodecKernels.ReadScale(unit) / Levels, add: false);

    public override void DecodeAddUnit(ReadOnlySpan<byte> unit, float weight, Span<float> accumulator) =>
        Expand(unit, accumulator, weight * (CodecKernels.ReadScale(unit) / Levels), add: true);

    private void Expand(ReadOnlySpan<byte> unit, Span<float> destination, float factor, bool add)
    {
        var codes = unit[sizeof(float)..];
        if (Bits == 8)
        {
            CodecKernels.Dequantize(codes[..destination.Length], factor, Levels, destination, add);
            return;
        }

        Span<byte> chunk = stackalloc byte[Chunk];
        for (var start = 0; start < destination.Length; start += Chunk)
        {
            var length = Math.Min(Chunk, destination.Length - start);
            CodecKernels.Unpack(codes[(start * Bits / 8)..], Bits, chunk[..length]);
            CodecKernels.Dequantize(chunk[..length], factor, Levels, destination.Slice(start, length), add);
        }
    }
}
