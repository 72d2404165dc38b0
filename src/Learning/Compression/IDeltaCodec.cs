using System.Buffers;

namespace Federated.Learning.Compression;

/// <summary>
/// Encodes a float32 vector (a model delta, or a model) into a self-describing payload and decodes it back. Every
/// payload starts with a <see cref="CodecHeader"/> and carries the codec's parameters, so
/// <see cref="DeltaCodecs.Decode"/> and <see cref="DeltaCodecs.DecodeAdd(ReadOnlySpan{byte}, float, Span{float})"/>
/// decode whatever any sender wrote. Build codecs with <see cref="DeltaCodecs.Parse"/> or the factories on
/// <see cref="DeltaCodecs"/>. Instances are immutable and thread-safe; the <see cref="CodecRandom"/> is not.
/// </summary>
/// <remarks>
/// Decoding is deterministic and uses separate (unfused) multiplies and adds, so two machines decoding the same
/// bytes get the same floats: the downlink's tracked replicas rely on it.
/// </remarks>
public interface IDeltaCodec
{
    /// <summary>Short name: <c>f32</c>, <c>fp16</c>, <c>bf16</c>, <c>q8</c>, <c>q4</c>, <c>q2</c>, <c>sign</c>, <c>topk</c> or <c>randk</c>.</summary>
    string Name { get; }

    /// <summary>The canonical spec, with every parameter spelled out; <see cref="DeltaCodecs.Parse"/> of it builds an equal codec.</summary>
    string Spec { get; }

    /// <summary>The codec id this codec writes.</summary>
    CodecId Id { get; }

    /// <summary>True when E[decode(encode(x))] = x over the codec's randomness (lossless codecs included).</summary>
    bool IsUnbiased { get; }

    /// <summary>An upper bound on the bytes <see cref="Encode"/> writes for <paramref name="elementCount"/> elements.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is negative or the payload would not fit one array.</exception>
    int GetMaxEncodedLength(int elementCount);

    /// <summary>Appends the encoding of <paramref name="input"/> to <paramref name="output"/>.</summary>
    /// <param name="input">The values, all finite.</param>
    /// <param name="output">Receives the payload; nothing is written when the call throws.</param>
    /// <param name="random">The randomness of stochastic codecs (deterministic codecs do not draw from it).</param>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="ArgumentException"><paramref name="input"/> holds NaN or an infinity.</exception>
    int Encode(ReadOnlySpan<float> input, IBufferWriter<byte> output, CodecRandom random);

    /// <summary>Decodes a payload of this codec's id (any parameters) into <paramref name="destination"/>.</summary>
    /// <exception cref="CodecException">The payload is malformed, of another codec, or not of <paramref name="destination"/>'s length; the destination is then unchanged.</exception>
    void Decode(ReadOnlySpan<byte> encoded, Span<float> destination);

    /// <summary>
    /// <paramref name="accumulator"/> += <paramref name="weight"/> × decoded, without a dense copy: sparse payloads
    /// visit only their coordinates. The whole payload is validated before the accumulator is touched.
    /// </summary>
    /// <exception cref="CodecException">As for <see cref="Decode"/>; the accumulator is then unchanged.</exception>
    void DecodeAdd(ReadOnlySpan<byte> encoded, float weight, Span<float> accumulator);
}
