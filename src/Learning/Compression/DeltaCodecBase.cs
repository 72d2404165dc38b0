using System.Buffers;

namespace Federated.Learning.Compression;

/// <summary>What every codec shares: decoding through <see cref="DeltaDecoder"/>, restricted to the codec's own id.</summary>
internal abstract class DeltaCodecBase : IDeltaCodec
{
    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract string Spec { get; }

    /// <inheritdoc />
    public abstract CodecId Id { get; }

    /// <inheritdoc />
    public abstract bool IsUnbiased { get; }

    /// <inheritdoc />
    public int GetMaxEncodedLength(int elementCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementCount);
        var bound = MaxEncodedLength(elementCount);
        return bound <= Array.MaxLength
            ? (int)bound
            : throw new ArgumentOutOfRangeException(nameof(elementCount), elementCount, $"{Spec}: {elementCount} elements would encode to more than one array holds.");
    }

    /// <inheritdoc />
    public abstract int Encode(ReadOnlySpan<float> input, IBufferWriter<byte> output, CodecRandom random);

    /// <inheritdoc />
    public void Decode(ReadOnlySpan<byte> encoded, Span<float> destination) =>
        DeltaDecoder.Run(encoded, destination, DecodeMode.Write, 1f, Id);

    /// <inheritdoc />
    public void DecodeAdd(ReadOnlySpan<byte> encoded, float weight, Span<float> accumulator) =>
        DeltaDecoder.Run(encoded, accumulator, DecodeMode.Add, DeltaDecoder.CheckWeight(weight), Id);

    /// <inheritdoc />
    public override string ToString() => Spec;

    /// <summary>The bound behind <see cref="GetMaxEncodedLength"/>, in 64 bits.</summary>
    internal abstract long MaxEncodedLength(int elementCount);

    /// <summary>Throws the encoders' error for non-finite input.</summary>
    protected void RequireFinite(ReadOnlySpan<float> input, string parameterName)
    {
        if (!CodecKernels.AllFinite(input))
        {
            throw new ArgumentException($"{Spec}: the input holds NaN or an infinity; only finite values can be encoded.", parameterName);
        }
    }
}

/// <summary>
/// A codec whose body is a run of units, each covering a fixed number of consecutive elements (a quantisation or
/// sign block, or a slice of a float vector), decodable on its own: the streaming decoder applies a unit as soon as
/// its bytes are in. The parameters after the header are fixed-size per codec id.
/// </summary>
internal abstract class DenseCodec : DeltaCodecBase
{
    /// <summary>Elements per unit for the plain float formats (a streaming granularity, not on the wire).</summary>
    protected const int PlainUnitElements = 4096;

    /// <summary>The size of the parameters that follow the header.</summary>
    public abstract int ParameterBytes { get; }

    /// <summary>Elements per unit (the last unit may hold fewer) in a payload of <paramref name="count"/> elements; ≥ 1.</summary>
    public abstract int UnitElements(int count);

    /// <summary>The bytes of a unit holding <paramref name="elements"/> elements.</summary>
    public abstract int UnitBytes(int elements);

    /// <summary>Bytes of the body for <paramref name="count"/> elements.</summary>
    public long BodyBytes(int count)
    {
        if (count == 0)
        {
            return 0;
        }

        var unit = UnitElements(count);
        var full = count / unit;
        var tail = count - (full * unit);
        return ((long)full * UnitBytes(unit)) + (tail > 0 ? UnitBytes(tail) : 0);
    }

    /// <inheritdoc />
    public sealed override int Encode(ReadOnlySpan<float> input, IBufferWriter<byte> output, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(random);
        var count = input.Length;
        var total = GetMaxEncodedLength(count);
        var span = output.GetSpan(total)[..total];
        CodecHeader.Write(span, Id, count);
        WriteParameters(span.Slice(CodecHeader.Size, ParameterBytes), count);
        var body = span[(CodecHeader.Size + ParameterBytes)..];
        if (count > 0)
        {
            var unit = UnitElements(count);
            var offset = 0;
            for (var start = 0; start < count; start += unit)
            {
                var length = Math.Min(unit, count - start);
                var bytes = UnitBytes(length);
                EncodeUnit(input.Slice(start, length), body.Slice(offset, bytes), random);
                offset += bytes;
            }
        }

        output.Advance(total);
        return total;
    }

    /// <summary>Writes the codec's parameters for a payload of <paramref name="count"/> elements.</summary>
    public abstract void WriteParameters(Span<byte> destination, int count);

    /// <summary>Encodes one unit; throws <see cref="ArgumentException"/> on non-finite input.</summary>
    public abstract void EncodeUnit(ReadOnlySpan<float> input, Span<byte> destination, CodecRandom random);

    /// <summary>
    /// Throws <see cref="CodecException"/> unless <paramref name="unit"/> is a valid unit of <paramref name="elements"/>
    /// elements (bad scale, reserved code, non-finite value, stray padding bits); <paramref name="unitIndex"/> and
    /// <paramref name="firstElement"/> place it in the payload for the message.
    /// </summary>
    public abstract void ValidateUnit(ReadOnlySpan<byte> unit, int elements, int unitIndex, int firstElement);

    /// <summary>Decodes a validated unit into <paramref name="destination"/> (its length is the unit's element count).</summary>
    public abstract void DecodeUnit(ReadOnlySpan<byte> unit, Span<float> destination);

    /// <summary><paramref name="accumulator"/> += <paramref name="weight"/> × the validated unit's values.</summary>
    public abstract void DecodeAddUnit(ReadOnlySpan<byte> unit, float weight, Span<float> accumulator);

    /// <inheritdoc />
    internal override long MaxEncodedLength(int elementCount) => CodecHeader.Size + ParameterBytes + BodyBytes(elementCount);

    /// <summary>The codec described by a payload's header and parameters.</summary>
    /// <exception cref="CodecException">Parameters out of range.</exception>
    public static DenseCodec FromWire(CodecId id, ReadOnlySpan<byte> parameters) => id switch
    {
        CodecId.Uncompressed => Float32Codec.Instance,
        CodecId.Float16 => Float16Codec.Instance,
        CodecId.BFloat16 => BFloat16Codec.Instance,
        CodecId.Quantized => QuantizedCodec.FromWire(parameters),
        CodecId.Sign => SignCodec.FromWire(parameters),
        _ => throw new CodecException($"Codec {id} is not a dense codec."),
    };

    /// <summary>The parameter bytes a payload of codec <paramref name="id"/> carries after its header.</summary>
    public static int ParameterBytesOf(CodecId id) => id switch
    {
        CodecId.Quantized => QuantizedCodec.WireParameterBytes,
        CodecId.Sign => SignCodec.WireParameterBytes,
        CodecId.Sparse => SparseCodec.WireParameterBytes,
        _ => 0,
    };
}
