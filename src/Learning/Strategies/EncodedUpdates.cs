using Federated.Learning.Compression;

namespace Federated.Learning.Strategies;

/// <summary>
/// One client's contribution whose model delta is still codec-encoded (see <see cref="DeltaCodecs"/>): what an
/// <see cref="IEncodedUpdateAggregator"/> folds without decoding it into a dense per-client copy.
/// </summary>
public sealed class EncodedClientUpdate
{
    /// <summary>The client (agent) id.</summary>
    public required string ClientId { get; init; }

    /// <summary>Examples the client trained on (the weight).</summary>
    public required long NumExamples { get; init; }

    /// <summary>The encoded delta: any codec's payload, decoding to the global model's length.</summary>
    public required ReadOnlyMemory<byte> EncodedDelta { get; init; }

    /// <summary>Client-reported metrics (loss, accuracy, seconds).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}

/// <summary>
/// An incremental aggregator that folds codec-encoded deltas straight into its sums with
/// <see cref="DeltaCodecs.DecodeAdd(ReadOnlySpan{byte}, float, Span{float})"/>: no dense copy per client, and a sparse
/// delta touches only its coordinates. Only plain weighted means implement it; decorators (deterministic order,
/// privacy, robust rules) and strategies that need more than the delta do not, and get dense updates instead.
/// </summary>
public interface IEncodedUpdateAggregator
{
    /// <summary>Folds <paramref name="update"/> in as <see cref="IRoundAggregator.Add"/> would fold its decoding.</summary>
    /// <exception cref="ArgumentException">The update does not fit (client, examples), or its payload is malformed or of another length; nothing was folded.</exception>
    void AddEncoded(EncodedClientUpdate update);

    /// <summary>
    /// Starts folding one client's encoded delta while its bytes still arrive (<see cref="IEncodedUpdateFold"/>):
    /// each unit is added to the sum as soon as it is complete, so decoding overlaps the upload and the update needs
    /// no dense copy. Nothing counts until <see cref="IEncodedUpdateFold.Commit"/>; <see cref="IEncodedUpdateFold.Abort"/>
    /// takes the partial contribution back out, and <see cref="IRoundAggregator.Finish"/> aborts streams left open.
    /// </summary>
    /// <param name="clientId">The client.</param>
    /// <param name="numExamples">Its weight, as declared when the upload began (checked again at commit).</param>
    /// <param name="encodedLength">The encoded delta's length in bytes.</param>
    /// <exception cref="ArgumentException">The client already contributed or has a stream open, or the weight is not positive.</exception>
    IEncodedUpdateFold BeginEncodedFold(string clientId, long numExamples, long encodedLength);
}

/// <summary>One client's encoded delta being folded as it arrives (see <see cref="IEncodedUpdateAggregator.BeginEncodedFold"/>). Not thread-safe.</summary>
public interface IEncodedUpdateFold
{
    /// <summary>The client.</summary>
    string ClientId { get; }

    /// <summary>True once every byte of the encoded delta has been decoded into the sum.</summary>
    bool IsComplete { get; }

    /// <summary>Decodes the next bytes of the encoded delta into the sum.</summary>
    /// <exception cref="ArgumentException">The bytes are malformed (bad header, length, values or indices): call <see cref="Abort"/>.</exception>
    void Append(ReadOnlyMemory<byte> segment);

    /// <summary>Counts the folded delta as the client's update, with its metrics; the stream is then closed.</summary>
    /// <exception cref="ArgumentException">The delta is incomplete, or the client may not contribute (already did, round closed); nothing was counted and the stream is aborted.</exception>
    void Commit(IReadOnlyDictionary<string, double> metrics);

    /// <summary>Subtracts what the stream added so far (within float rounding) and closes it. A second call does nothing.</summary>
    void Abort();
}
