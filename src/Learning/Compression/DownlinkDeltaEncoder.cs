using System.Buffers;
using Federated.Learning.Weights;

namespace Federated.Learning.Compression;

/// <summary>
/// The coordinator's half of compressed downlinks. For each agent the coordinator keeps a replica: the model the
/// agent holds, as the agent reconstructed it. <see cref="EncodeDelta"/> encodes global − replica and advances the
/// replica by exactly what the agent will add (<see cref="ApplyDelta"/> on both sides: decoding is deterministic), so
/// lossy codecs never let the two drift: what one round drops is in the next round's delta. When the agent's model
/// is unknown (a new agent, a lost replica) the caller sends the full model instead: <see cref="EncodeFull"/>, which
/// sets the replica to what the agent will decode. Which to send, and the versions, are the caller's business.
/// Not thread-safe (it reuses its buffers); one per sending thread.
/// </summary>
/// <param name="codec">The downlink codec (any; lossy ones included).</param>
public sealed class DownlinkDeltaEncoder(IDeltaCodec codec)
{
    private readonly IDeltaCodec _codec = codec ?? throw new ArgumentNullException(nameof(codec));
    private readonly ArrayBufferWriter<byte> _encoded = new();
    private float[] _delta = [];

    /// <summary>The codec.</summary>
    public IDeltaCodec Codec => _codec;

    /// <summary>
    /// Writes encode(<paramref name="global"/> − <paramref name="replica"/>) to <paramref name="output"/> and adds its
    /// decoding to <paramref name="replica"/>, which then equals the agent's model after <see cref="ApplyDelta"/>.
    /// </summary>
    /// <returns>The bytes written.</returns>
    public int EncodeDelta(ReadOnlySpan<float> global, Span<float> replica, IBufferWriter<byte> output, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_delta.Length != global.Length)
        {
            _delta = new float[global.Length];
        }

        WeightVectors.Delta(global, replica, _delta);
        var encoded = EncodeToScratch(_delta, random);
        ApplyDelta(encoded, replica);
        output.Write(encoded);
        return encoded.Length;
    }

    /// <summary>Writes encode(<paramref name="global"/>) and sets <paramref name="replica"/> to its decoding (what <see cref="ApplyFull"/> gives the agent).</summary>
    /// <returns>The bytes written.</returns>
    public int EncodeFull(ReadOnlySpan<float> global, Span<float> replica, IBufferWriter<byte> output, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(output);
        var encoded = EncodeToScratch(global, random);
        ApplyFull(encoded, replica);
        output.Write(encoded);
        return encoded.Length;
    }

    /// <summary>The agent's side of <see cref="EncodeDelta"/>: <paramref name="model"/> += decode(<paramref name="encoded"/>).</summary>
    /// <exception cref="CodecException">The payload is malformed; the model is then unchanged.</exception>
    public static void ApplyDelta(ReadOnlySpan<byte> encoded, Span<float> model) => DeltaCodecs.DecodeAdd(encoded, 1f, model);

    /// <summary>The agent's side of <see cref="EncodeFull"/>: <paramref name="model"/> = decode(<paramref name="encoded"/>).</summary>
    /// <exception cref="CodecException">The payload is malformed; the model is then unchanged.</exception>
    public static void ApplyFull(ReadOnlySpan<byte> encoded, Span<float> model) => DeltaCodecs.Decode(encoded, model);

    private ReadOnlySpan<byte> EncodeToScratch(ReadOnlySpan<float> values, CodecRandom random)
    {
        _encoded.ResetWrittenCount();
        _codec.Encode(values, _encoded, random);
        return _encoded.WrittenSpan;
    }
}
