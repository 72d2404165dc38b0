using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Federated.Learning.Compression;

/// <summary>Dense float32, lossless: the baseline, and the default value codec of the sparse codecs.</summary>
internal sealed class Float32Codec : DenseCodec
{
    public static readonly Float32Codec Instance = new();

    public override string Name => "f32";

    public override string Spec => Name;

    public override CodecId Id => CodecId.Uncompressed;

    public override bool IsUnbiased => true;

    public override int ParameterBytes => 0;

    public override int UnitElements(int count) => PlainUnitElements;

    public override int UnitBytes(int elements) => elements * sizeof(float);

    public override void WriteParameters(Span<byte> destination, int count)
    {
    }

    public override void EncodeUnit(ReadOnlySpan<float> input, Span<byte> destination, CodecRandom random)
    {
        RequireFinite(input, nameof(input));
        MemoryMarshal.AsBytes(input).CopyTo(destination);
    }

    public override void ValidateUnit(ReadOnlySpan<byte> unit, int elements, int unitIndex, int firstElement)
    {
        var values = MemoryMarshal.Cast<byte, float>(unit);
        if (!CodecKernels.AllFinite(values))
        {
            var bad = FirstNonFinite(values);
            throw new CodecException($"f32 value {firstElement + bad} is {values[bad]}; decoded values must be finite.");
        }
    }

    public override void DecodeUnit(ReadOnlySpan<byte> unit, Span<float> destination) =>
        MemoryMarshal.Cast<byte, float>(unit).CopyTo(destination);

    public override void DecodeAddUnit(ReadOnlySpan<byte> unit, float weight, Span<float> accumulator) =>
        TensorPrimitives.MultiplyAdd(MemoryMarshal.Cast<byte, float>(unit), weight, accumulator, accumulator);

    private static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return i;
            }
        }

        return 0;
    }
}

/// <summary>
/// The two 16-bit float formats: IEEE half (fp16: 10-bit mantissa, relative error ≤ 2⁻¹¹ for |x| ≥ 6.1e-5, range
/// ±65504, saturated) and bfloat16 (7-bit mantissa, relative error ≤ 2⁻⁸, float32's range). Both round to nearest
/// even: deterministic, so slightly biased; error feedback absorbs the difference.
/// </summary>
internal abstract class HalfWidthCodec : DenseCodec
{
    /// <summary>Floats per stack chunk when decoding with a weight.</summary>
    private const int AddChunk = 512;

    public override bool IsUnbiased => false;

    public override int ParameterBytes => 0;

    /// <summary>The bits that are all ones in NaN and ±∞.</summary>
    protected abstract ushort ExponentMask { get; }

    public override int UnitElements(int count) => PlainUnitElements;

    public override int UnitBytes(int elements) => elements * sizeof(ushort);

    public override void WriteParameters(Span<byte> destination, int count)
    {
    }

    public override void ValidateUnit(ReadOnlySpan<byte> unit, int elements, int unitIndex, int firstElement)
    {
        var bad = CodecKernels.FindNonFinite16(MemoryMarshal.Cast<byte, ushort>(unit), ExponentMask);
        if (bad >= 0)
        {
            throw new CodecException($"{Name} value {firstElement + bad} is NaN or infinite; decoded values must be finite.");
        }
    }

    public override void DecodeAddUnit(ReadOnlySpan<byte> unit, float weight, Span<float> accumulator)
    {
        Span<float> chunk = stackalloc float[AddChunk];
        for (var start = 0; start < accumulator.Length; start += AddChunk)
        {
            var length = Math.Min(AddChunk, accumulator.Length - start);
            var values = chunk[..length];
            DecodeUnit(unit.Slice(start * sizeof(ushort), length * sizeof(ushort)), values);
            var target = accumulator.Slice(start, length);
            TensorPrimitives.MultiplyAdd(values, weight, target, target);
        }
    }
}

/// <summary>IEEE half precision.</summary>
internal sealed class Float16Codec : HalfWidthCodec
{
    public static readonly Float16Codec Instance = new();

    private const ushort Infinity = 0x7C00;
    private const ushort LargestFinite = 0x7BFF;

    public override string Name => "fp16";

    public override string Spec => Name;

    public override CodecId Id => CodecId.Float16;

    protected override ushort ExponentMask => Infinity;

    public override void EncodeUnit(ReadOnlySpan<float> input, Span<byte> destination, CodecRandom random)
    {
        RequireFinite(input, nameof(input));
        TensorPrimitives.ConvertToHalf(input, MemoryMarshal.Cast<byte, Half>(destination));

        // Finite inputs beyond ±65504 round to ±∞: saturate them to the largest finite half instead.
        var bits = MemoryMarshal.Cast<byte, ushort>(destination);
        for (var i = CodecKernels.FindNonFinite16(bits, Infinity); i >= 0;)
        {
            bits[i] = (ushort)((bits[i] & 0x8000) | LargestFinite);
            var next = CodecKernels.FindNonFinite16(bits[(i + 1)..], Infinity);
            i = next < 0 ? -1 : i + 1 + next;
        }
    }

    public override void DecodeUnit(ReadOnlySpan<byte> unit, Span<float> destination) =>
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(unit), destination);
}

/// <summary>bfloat16, round-to-nearest-even, saturating instead of rounding up to ±∞.</summary>
internal sealed class BFloat16Codec : HalfWidthCodec
{
    public static readonly BFloat16Codec Instance = new();

    public override string Name => "bf16";

    public override string Spec => Name;

    public override CodecId Id => CodecId.BFloat16;

    protected override ushort ExponentMask => 0x7F80;

    public override void EncodeUnit(ReadOnlySpan<float> input, Span<byte> destination, CodecRandom random)
    {
        RequireFinite(input, nameof(input));
        CodecKernels.ToBFloat16(input, MemoryMarshal.Cast<byte, ushort>(destination));
    }

    public override void DecodeUnit(ReadOnlySpan<byte> unit, Span<float> destination) =>
        CodecKernels.FromBFloat16(MemoryMarshal.Cast<byte, ushort>(unit), destination, 1f, add: false);

    public override void DecodeAddUnit(ReadOnlySpan<byte> unit, float weight, Span<float> accumulator) =>
        CodecKernels.FromBFloat16(MemoryMarshal.Cast<byte, ushort>(unit), accumulator, weight, add: true);
}
