using System.Buffers;

namespace Federated.Learning.Compression;

/// <summary>
/// The entry points: build codecs (from a spec string or the factories) and decode any payload, whichever codec
/// wrote it. Spec grammar: <c>stage[+stage]</c>, <c>stage = name[:key=value[,key=value]…]</c>:
/// <list type="bullet">
/// <item><c>f32</c>, <c>fp16</c>, <c>bf16</c>: no parameters.</item>
/// <item><c>q8</c>, <c>q4</c>, <c>q2</c>: <c>block</c> = elements per scale, 1 to 2^24 (default 512).</item>
/// <item><c>sign</c>: <c>block</c> = elements per scale, ≥ 1 (default: one scale for the whole vector).</item>
/// <item><c>topk</c>: <c>ratio</c> in (0, 1], required.</item>
/// <item><c>randk</c>: <c>ratio</c> in (0, 1], required; <c>seeded</c> (default true: send the seed, not the indices);
/// <c>scaled</c> (default true: values × n/k, unbiased).</item>
/// </list>
/// A sparse stage may be followed by <c>+</c> and the dense codec of its values (default <c>f32</c>), e.g.
/// <c>topk:ratio=0.01+q8</c>.
/// </summary>
public static class DeltaCodecs
{
    /// <summary>Dense float32, uncompressed and lossless (spec <c>f32</c>).</summary>
    public static IDeltaCodec Uncompressed => Float32Codec.Instance;

    /// <summary>IEEE half precision, saturating at ±65504.</summary>
    public static IDeltaCodec Float16 => Float16Codec.Instance;

    /// <summary>bfloat16, round-to-nearest-even.</summary>
    public static IDeltaCodec BFloat16 => BFloat16Codec.Instance;

    /// <summary>Stochastic uniform quantisation to <paramref name="bits"/> ∈ {8, 4, 2} bits with a scale per <paramref name="blockSize"/> elements.</summary>
    public static IDeltaCodec Quantized(int bits, int blockSize = QuantizedCodec.DefaultBlockSize) => new QuantizedCodec(bits, blockSize);

    /// <summary>Scaled sign: one bit per element, the mean magnitude per <paramref name="blockSize"/> elements (0: one scale).</summary>
    public static IDeltaCodec Sign(int blockSize = 0) => new SignCodec(blockSize);

    /// <summary>Top-k by magnitude, k = max(1, round(<paramref name="ratio"/>·n)); <paramref name="values"/> (a dense codec, default f32) encodes the kept values.</summary>
    public static IDeltaCodec TopK(double ratio, IDeltaCodec? values = null) => new TopKCodec(ratio, RequireDense(values));

    /// <summary>Random-k (see the spec grammar for <paramref name="seeded"/> and <paramref name="scaled"/>).</summary>
    public static IDeltaCodec RandomK(double ratio, bool seeded = true, bool scaled = true, IDeltaCodec? values = null) =>
        new RandomKCodec(ratio, seeded, scaled, RequireDense(values));

    /// <summary>Builds the codec a spec string describes (grammar above).</summary>
    /// <exception cref="ArgumentException">The spec is malformed, names an unknown codec or parameter, or a value is out of range.</exception>
    public static IDeltaCodec Parse(string spec) => CodecSpec.Parse(spec);

    /// <summary>Reads a payload's header (codec, version, element count) without decoding it.</summary>
    /// <exception cref="CodecException">The header is truncated or names an unknown codec or version.</exception>
    public static CodecHeader ReadHeader(ReadOnlySpan<byte> encoded) => CodecHeader.Read(encoded);

    /// <summary>Decodes any payload into <paramref name="destination"/> (sparse payloads zero the rest).</summary>
    /// <exception cref="CodecException">The payload is malformed or not of the destination's length; the destination is then unchanged.</exception>
    public static void Decode(ReadOnlySpan<byte> encoded, Span<float> destination) =>
        DeltaDecoder.Run(encoded, destination, DecodeMode.Write, 1f, null);

    /// <summary>
    /// <paramref name="accumulator"/> += <paramref name="weight"/> × decode(<paramref name="encoded"/>) for any payload,
    /// validated in full first, without a dense copy (sparse payloads touch only their coordinates).
    /// </summary>
    /// <exception cref="CodecException">The payload is malformed or not of the accumulator's length; the accumulator is then unchanged.</exception>
    public static void DecodeAdd(ReadOnlySpan<byte> encoded, float weight, Span<float> accumulator) =>
        DeltaDecoder.Run(encoded, accumulator, DecodeMode.Add, DeltaDecoder.CheckWeight(weight), null);

    /// <summary>As <see cref="DecodeAdd(ReadOnlySpan{byte}, float, Span{float})"/> over a payload held in segments (e.g. received chunks), without joining them.</summary>
    public static void DecodeAdd(in ReadOnlySequence<byte> encoded, float weight, Span<float> accumulator) =>
        DeltaDecoder.Run(encoded, accumulator, DecodeMode.Add, DeltaDecoder.CheckWeight(weight));

    /// <summary>Encodes <paramref name="input"/> into a new array.</summary>
    public static byte[] EncodeToArray(this IDeltaCodec codec, ReadOnlySpan<float> input, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(codec);
        var writer = new ArrayBufferWriter<byte>(codec.GetMaxEncodedLength(input.Length));
        codec.Encode(input, writer, random);
        return writer.WrittenSpan.ToArray();
    }

    private static DenseCodec RequireDense(IDeltaCodec? values) => values switch
    {
        null => Float32Codec.Instance,
        DenseCodec dense => dense,
        _ => throw new ArgumentException($"The values of a sparse codec must use a dense codec (f32, fp16, bf16, q8, q4, q2 or sign), not '{values.Spec}'.", nameof(values)),
    };
}
