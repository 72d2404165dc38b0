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
}
