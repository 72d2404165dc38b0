using System.Buffers.Binary;
using System.Globalization;
using System.Numerics.Tensors;

namespace Federated.Learning.Compression;

/// <summary>
/// Scaled sign (signSGD with a magnitude): one bit per element and a float32 scale s = mean |x| per block, decoded as
/// ±s. Biased (decode keeps the block's L1 norm, not the values): pair it with error feedback. Each block is
/// [scale][sign bits, element 8j+t in bit t of byte j, 1 = negative, padded to a byte].
/// </summary>
/// <remarks>Wire parameter: the block size (uint32) actually used; block size 0 in the codec means one block.</remarks>
internal sealed class SignCodec : DenseCodec
{
    /// <summary>The parameter bytes after the header.</summary>
    public const int WireParameterBytes = 4;

    /// <summary>Magnitudes summed per float chunk before the double accumulator takes them.</summary>
    private const int SumChunk = 4096;

    /// <param name="blockSize">Elements per scale; 0 for one scale over the whole vector.</param>
    public SignCodec(int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(blockSize);
        BlockSize = blockSize;
    }

    /// <summary>Elements per scale; 0 for one scale over the whole vector.</summary>
    public int BlockSize { get; }

    public override string Name => "sign";

    public override string Spec => BlockSize == 0 ? Name : string.Create(CultureInfo.InvariantCulture, $"{Name}:block={BlockSize}");

    public override CodecId Id => CodecId.Sign;

    public override bool IsUnbiased => false;

    public override int ParameterBytes => WireParameterBytes;

    public static SignCodec FromWire(ReadOnlySpan<byte> parameters)
    {
        var block = BinaryPrimitives.ReadUInt32LittleEndian(parameters);
        return block is < 1 or > int.MaxValue
            ? throw new CodecException($"A sign payload declares the block size {block}; it must be between 1 and {int.MaxValue}.")
            : new SignCodec((int)block);
    }

    public override int UnitElements(int count) => Math.Max(1, BlockSize == 0 ? count : Math.Min(BlockSize, count));

    public override int UnitBytes(int elements) => sizeof(float) + (int)((elements + 7L) / 8);

    public override void WriteParameters(Span<byte> destination, int count) =>
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)UnitElements(count));

    public override void EncodeUnit(ReadOnlySpan<float> input, Span<byte> destination, CodecRandom random)
    {
        RequireFinite(input, nameof(input));
        double sum = 0;
        for (var start = 0; start < input.Length; start += SumChunk)
        {
            sum += TensorPrimitives.SumOfMagnitudes(input.Slice(start, Math.Min(SumChunk, input.Length - start)));
        }

        CodecKernels.WriteScale(destination, (float)(sum / input.Length));
        CodecKernels.PackSigns(input, destination[sizeof(float)..]);
    }

    public override void ValidateUnit(ReadOnlySpan<byte> unit, int elements, int unitIndex, int firstElement)
    {
        CodecKernels.CheckScale(CodecKernels.ReadScale(unit), Name, unitIndex);
        CodecKernels.CheckPadding(unit[sizeof(float)..], elements, Name, unitIndex);
    }

    public override void DecodeUnit(ReadOnlySpan<byte> unit, Span<float> destination) =>
        CodecKernels.ExpandSigns(unit[sizeof(float)..], CodecKernels.ReadScale(unit), destination, add: false);

    public override void DecodeAddUnit(ReadOnlySpan<byte> unit, float weight, Span<float> accumulator) =>
        CodecKernels.ExpandSigns(unit[sizeof(float)..], weight * CodecKernels.ReadScale(unit), accumulator, add: true);
}
