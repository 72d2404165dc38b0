namespace Federated.Learning.Compression;

/// <summary>
/// Decodes one payload into an aggregate as its chunks arrive: <see cref="Append"/> checks and adds every unit
/// (block, or slice of values) as soon as its bytes are in, so no dense per-sender copy is built and a sparse
/// payload touches only its coordinates. A sparse payload's index section is checked in full before any of its
/// values is added. Not thread-safe: one stream, one caller.
/// </summary>
/// <remarks>
/// A payload can fail half way (a bad block, a stream that stops). The decoder keeps a reference to every chunk it
/// was given (not a copy: the caller must not reuse a chunk's buffer while the decoder lives; received protobuf
/// <c>ByteString</c>s are immutable), so <see cref="Revert"/> can take the contribution back out by adding the same
/// units with the opposite weight: exact in real arithmetic, within float rounding (a few ulps of the values
/// involved) in float32. Memory: the accumulator is the caller's; the decoder copies at most one unit that
/// straddles two chunks, and a sparse payload's index section.
/// </remarks>
public sealed class StreamingDeltaDecoder : IDisposable
{
    private readonly Memory<float> _accumulator;
    private readonly float _weight;
    private readonly long _length;
    private readonly List<ReadOnlyMemory<byte>> _chunks = [];
    private long _received;
    private DeltaDecoder? _decoder;
    private bool _faulted;
    private bool _reverted;

    /// <param name="accumulator">The aggregate: receives <paramref name="weight"/> × the decoded values.</param>
    /// <param name="weight">The sender's weight (e.g. its example count), finite.</param>
    /// <param name="payloadLength">The payload's length in bytes, as declared by the transfer; bounds every buffer.</param>
    /// <exception cref="CodecException">The declared length cannot hold a header.</exception>
    public StreamingDeltaDecoder(Memory<float> accumulator, float weight, long payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        _accumulator = accumulator;
        _weight = DeltaDecoder.CheckWeight(weight);
        _length = payloadLength;
        _decoder = new DeltaDecoder(accumulator.Length, payloadLength, DecodeMode.Add, _weight, null);
    }

    /// <summary>Bytes appended so far.</summary>
    public long BytesReceived => _received;

    /// <summary>True once the whole payload has been decoded (<see cref="Complete"/> confirms nothing follows).</summary>
    public bool IsComplete => _decoder is { IsDone: true } && !_faulted;

    /// <summary>Consumes the next chunk, adding every unit it completes; keeps a reference to it until disposed.</summary>
    /// <exception cref="CodecException">The bytes so far are malformed; the decoder is then faulted (call <see cref="Revert"/>).</exception>
    public void Append(ReadOnlyMemory<byte> chunk)
    {
        var decoder = Live();

        // Kept before decoding: a chunk can apply units and then fail, and Revert must replay those units.
        _chunks.Add(chunk[..(int)Math.Clamp(_length - _received, 0L, chunk.Length)]);
        _received += chunk.Length;
        try
        {
            decoder.Feed(chunk.Span, _accumulator.Span);
        }
        catch (CodecException)
        {
            _faulted = true;
            throw;
        }
    }

    /// <summary>Confirms the payload ended exactly at its declared length.</summary>
    /// <exception cref="CodecException">It is truncated; the decoder is then faulted (call <see cref="Revert"/>).</exception>
    public void Complete()
    {
        var decoder = Live();
        try
        {
            decoder.Complete(_accumulator.Span);
        }
        catch (CodecException)
        {
            _faulted = true;
            throw;
        }
    }

    /// <summary>
    /// Subtracts what this payload added so far (after a failure, or to drop an update already decoded); then the
    /// decoder is spent. A second call does nothing.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The decoder was disposed before it was reverted.</exception>
    public void Revert()
    {
        if (_reverted)
        {
            return;
        }

        ObjectDisposedException.ThrowIf(_decoder is null, this);

        var applied = _decoder.AppliedUnits;
        _decoder.Dispose();
        _decoder = null;
        _reverted = true;
        if (applied == 0)
        {
            return;
        }

        using var undo = new DeltaDecoder(_accumulator.Length, _length, DecodeMode.Add, -_weight, null, unitLimit: applied);
        foreach (var chunk in _chunks)
        {
            undo.Feed(chunk.Span, _accumulator.Span);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _decoder?.Dispose();
        _decoder = null;
        _chunks.Clear();
    }

    private DeltaDecoder Live()
    {
        ObjectDisposedException.ThrowIf(_decoder is null, this);
        return _faulted ? throw new InvalidOperationException("The payload was rejected; call Revert and drop the update.") : _decoder;
    }
}
