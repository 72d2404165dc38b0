using Federated.Learning.Strategies;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Rounds;

/// <summary>
/// Decodes codec-encoded model deltas into one round's weighted-mean aggregate while their upload chunks arrive, so
/// the decode overlaps the transfer and a result costs almost nothing when it comes. Owned by the round loop (one
/// thread); fed by <see cref="UploadChunkReceived"/> events, which the loop sees before the result that names the upload.
/// </summary>
/// <remarks>
/// Streaming is an optimisation, never a second path to acceptance: a stream that cannot go on (a gap, a chunk stream
/// restarted after a checksum failure, a payload framed unusually, malformed codec bytes, an old agent that sends no
/// example count) is aborted — its partial contribution subtracted — and the result is then handled exactly as
/// without streaming (decoded once the upload completes, and rejected there with its reason when malformed). A stream
/// is committed only when the assembled upload passed its SHA-256, the payload parses, its model tensor is the codec
/// tensor that was streamed, and the result's example count equals the one declared at the start.
/// </remarks>
internal sealed class StreamingFolds
{
    private readonly IEncodedUpdateAggregator _aggregator;
    private readonly int _round;
    private readonly Dictionary<string, Stream> _streams = new(StringComparer.Ordinal);

    private StreamingFolds(IEncodedUpdateAggregator aggregator, int round)
    {
        _aggregator = aggregator;
        _round = round;
    }

    /// <summary>Updates committed from streams so far.</summary>
    public int Committed { get; private set; }

    /// <summary>Streams aborted so far (each then took the ordinary path).</summary>
    public int Aborted { get; private set; }

    /// <summary>Streaming folds for <paramref name="round"/> when its aggregator folds encoded deltas and uploads are codec-encoded; else null.</summary>
    public static StreamingFolds? For(IRoundAggregator aggregator, int round, bool uplinkEncoded) =>
        uplinkEncoded && aggregator is IEncodedUpdateAggregator encoded ? new StreamingFolds(encoded, round) : null;

    /// <summary>Feeds one accepted upload chunk of an agent that holds a task of this round.</summary>
    public void OnChunk(UploadChunkReceived chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (chunk.Header.Round != _round)
        {
            return;
        }

        _streams.TryGetValue(chunk.TransferId, out var stream);
        if (chunk.Sequence == 0)
        {
            // A new upload, or one that restarted from chunk 0 (checksum failure, replaced payload): start over.
            if (stream is not null)
            {
                Abort(stream);
            }

            if (chunk.Header.NumExamples <= 0 || _streams.Values.Any(s => s.AgentId == chunk.AgentId))
            {
                return;
            }

            stream = new Stream(chunk.AgentId, chunk.Header);
            stream.Scanner = new PayloadStreamScanner(chunk.Header.TotalBytes, (name, encoding, length) => Select(stream, name, encoding, length));
            _streams[chunk.TransferId] = stream;
        }

        if (stream is null || stream.Broken || chunk.Sequence < stream.NextSequence)
        {
            return;
        }

        if (chunk.Sequence > stream.NextSequence || chunk.AgentId != stream.AgentId)
        {
            Abort(stream);
            return;
        }

        try
        {
            stream.Scanner!.Feed(chunk.Data);
            stream.NextSequence++;
        }
        catch (Exception e) when (e is TransferException or ArgumentException or InvalidOperationException)
        {
            Abort(stream);
        }
    }

    /// <summary>
    /// Commits the streamed update of <paramref name="result"/> if there is one and it is whole; false when the caller
    /// must fold the update from <paramref name="payload"/> itself (any partial stream has been taken back out).
    /// </summary>
    /// <exception cref="TransferException">The payload's model tensor is missing or of another length (the stream is aborted).</exception>
    /// <exception cref="ArgumentException">The aggregator refused the update (the stream is aborted).</exception>
    public bool TryCommit(string agentId, TaskResult result, Payload payload, long length)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (!_streams.Remove(result.UploadTransferId, out var stream))
        {
            return false;
        }

        if (stream.AgentId != agentId || stream.Broken || stream.Update is not { IsComplete: true } || stream.Scanner is not { IsComplete: true }
            || stream.Header.NumExamples != result.NumExamples)
        {
            Abort(stream);
            return false;
        }

        try
        {
            var model = PayloadCodec.GetTensor(payload, PayloadCodec.ModelTensor, length);
            if (model.Encoding != TensorEncoding.Codec || model.Data.Length != stream.DataLength)
            {
                Abort(stream);
                return false;
            }

            stream.Update.Commit(result.Metrics.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
        }
        catch
        {
            Abort(stream);
            throw;
        }

        Committed++;
        return true;
    }

    /// <summary>Aborts every stream not committed (before the round's aggregate is finished).</summary>
    public void AbortAll()
    {
        foreach (var stream in _streams.Values.ToArray())
        {
            Abort(stream);
        }

        _streams.Clear();
    }

    private Action<ReadOnlyMemory<byte>>? Select(Stream stream, string name, TensorEncoding encoding, long length)
    {
        if (name != PayloadCodec.ModelTensor)
        {
            return null;
        }

        if (encoding != TensorEncoding.Codec || stream.Update is not null)
        {
            // Dense, or a second "model" tensor: the ordinary path decides (and rejects a duplicate).
            throw new InvalidOperationException("The model tensor cannot be streamed.");
        }

        stream.Update = _aggregator.BeginEncodedFold(stream.AgentId, stream.Header.NumExamples, length);
        stream.DataLength = length;
        return stream.Update.Append;
    }

    private void Abort(Stream stream)
    {
        if (!stream.Broken)
        {
            stream.Broken = true;
            stream.Update?.Abort();
            Aborted++;
        }

        foreach (var (id, s) in _streams)
        {
            if (ReferenceEquals(s, stream))
            {
                _streams.Remove(id);
                break;
            }
        }
    }

    private sealed class Stream(string agentId, UploadHeader header)
    {
        public string AgentId { get; } = agentId;

        public UploadHeader Header { get; } = header;

        public PayloadStreamScanner? Scanner { get; set; }

        public IEncodedUpdateFold? Update { get; set; }

        public long DataLength { get; set; }

        public int NextSequence { get; set; }

        public bool Broken { get; set; }
    }
}
