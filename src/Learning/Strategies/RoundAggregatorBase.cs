using System.Numerics.Tensors;
using Federated.Learning.Compression;
using Federated.Learning.Weights;

namespace Federated.Learning.Strategies;

/// <summary>Checks an update before it is folded in, without folding it (used by <see cref="DeterministicAggregator"/>).</summary>
internal interface IUpdateValidator
{
    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="update"/> cannot be added.</summary>
    void Validate(ClientUpdate update);
}

/// <summary>
/// The shared skeleton of the incremental aggregators: validation (length, examples, finite values, duplicates),
/// the weighted means of the clients' <c>loss</c> and <c>accuracy</c>, and the once-only <see cref="Finish"/>.
/// Subclasses fold each update into O(model) accumulators and turn them into the next global model.
/// </summary>
internal abstract class RoundAggregatorBase : IRoundAggregator, IUpdateValidator
{
    private static readonly string[] AveragedMetrics = ["loss", "accuracy"];

    private readonly HashSet<string> _clients = new(StringComparer.Ordinal);
    private readonly double[] _metricSums = new double[AveragedMetrics.Length];
    private readonly double[] _metricWeights = new double[AveragedMetrics.Length];
    private long _examples;
    private bool _finished;

    protected RoundAggregatorBase(string strategy, ReadOnlyMemory<float> globalModel)
    {
        if (globalModel.IsEmpty)
        {
            throw new ArgumentException("The global model is empty.", nameof(globalModel));
        }

        Strategy = strategy;
        Global = globalModel;
    }

    /// <inheritdoc />
    public bool IsIncremental => true;

    /// <inheritdoc />
    public int Count { get; private set; }

    /// <summary>The strategy's name, for messages.</summary>
    protected string Strategy { get; }

    /// <summary>The global model of the round (the caller keeps it unchanged until <see cref="Finish"/>).</summary>
    protected ReadOnlyMemory<float> Global { get; }

    /// <summary>
    /// Whether <see cref="Finish"/> completes a round to which no update came. False: it throws. The differentially
    /// private aggregator says true, because it releases the noise alone (the mechanism its accountant charges).
    /// </summary>
    protected virtual bool CompletesWithoutUpdates => false;

    /// <inheritdoc />
    public void Validate(ClientUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        ValidateContributor(update.ClientId, update.NumExamples);
        RequireVector(update.ClientId, "delta", update.Delta, Global.Length);
        ValidateMore(update);
    }

    /// <inheritdoc />
    public void Add(ClientUpdate update)
    {
        Validate(update);
        Fold(update);
        Record(update.ClientId, update.NumExamples, update.Metrics);
    }

    /// <summary>The checks every update passes whatever form its delta has: open round, client id, first contribution, positive weight.</summary>
    protected void ValidateContributor(string clientId, long numExamples)
    {
        EnsureOpen();
        if (string.IsNullOrEmpty(clientId))
        {
            throw new ArgumentException($"{Strategy}: an update has no client id.");
        }

        if (_clients.Contains(clientId))
        {
            throw new ArgumentException($"{Strategy}: client '{clientId}' already contributed to this round.");
        }

        if (numExamples <= 0)
        {
            throw new ArgumentException($"{Strategy}: client '{clientId}' reports {numExamples} examples; the weight must be positive.");
        }
    }

    /// <summary>Counts a folded update: its client, its examples and its averaged metrics.</summary>
    protected void Record(string clientId, long numExamples, IReadOnlyDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _clients.Add(clientId);
        _examples += numExamples;
        for (var i = 0; i < AveragedMetrics.Length; i++)
        {
            if (metrics.TryGetValue(AveragedMetrics[i], out var value) && double.IsFinite(value))
            {
                _metricSums[i] += numExamples * value;
                _metricWeights[i] += numExamples;
            }
        }

        Count++;
    }

    /// <inheritdoc />
    public AggregationResult Finish(IReadOnlyList<ClientFailure> failures)
    {
        EnsureOpen();
        if (Count == 0 && !CompletesWithoutUpdates)
        {
            throw new InvalidOperationException($"{Strategy}: no updates to aggregate ({failures?.Count ?? 0} failures).");
        }

        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["accepted"] = Count,
            ["failures"] = failures?.Count ?? 0,
            ["examples"] = _examples,
        };
        for (var i = 0; i < AveragedMetrics.Length; i++)
        {
            if (_metricWeights[i] > 0)
            {
                metrics[AveragedMetrics[i]] = _metricSums[i] / _metricWeights[i];
            }
        }

        var next = Complete(metrics);
        _finished = true;
        return new AggregationResult(next, Count, metrics);
    }

    /// <summary>Throws unless <paramref name="vector"/> has <paramref name="length"/> finite values.</summary>
    internal static void RequireVector(string clientId, string what, float[]? vector, int length)
    {
        if (vector is null)
        {
            throw new ArgumentException($"Client '{clientId}' sent no {what}.");
        }

        if (vector.Length != length)
        {
            throw new ArgumentException($"Client '{clientId}' sent a {what} of {vector.Length} floats; the global model has {length}.");
        }

        if (!TensorPrimitives.IsFiniteAll<float>(vector))
        {
            throw new ArgumentException($"Client '{clientId}' sent a {what} with non-finite values (NaN or infinity); the update is rejected.");
        }
    }

    /// <summary>Strategy-specific checks (required tensors, step counts).</summary>
    protected virtual void ValidateMore(ClientUpdate update)
    {
    }

    /// <summary>Folds a validated update into the accumulators (keeping no reference to it).</summary>
    protected abstract void Fold(ClientUpdate update);

    /// <summary>Produces the next global model, adding metrics (at least <c>delta_norm</c>).</summary>
    protected abstract float[] Complete(Dictionary<string, double> metrics);

    /// <summary>A fresh copy of the global model.</summary>
    protected float[] CopyGlobal() => Global.ToArray();

    /// <summary>Records the L2 norm of the aggregated delta.</summary>
    protected static void RecordNorm(Dictionary<string, double> metrics, ReadOnlySpan<float> delta) =>
        metrics["delta_norm"] = WeightVectors.L2Norm(delta);

    private void EnsureOpen()
    {
        if (_finished)
        {
            throw new InvalidOperationException($"{Strategy}: the round was already finished.");
        }
    }
}

/// <summary>
/// Δ = Σ nᵢ Δᵢ / Σ nᵢ folded incrementally (one float32 accumulator), then a server step turns Δ into the model.
/// FedAvg, FedProx, FedAvgM and the adaptive strategies differ only in that step.
/// </summary>
internal sealed class WeightedMeanAggregator : RoundAggregatorBase, IEncodedUpdateAggregator
{
    private readonly float[] _sum;
    private readonly Action<float[], float[]> _serverStep;
    private readonly Dictionary<string, EncodedStream> _streams = new(StringComparer.Ordinal);
    private double _weight;

    /// <param name="strategy">Name for messages.</param>
    /// <param name="globalModel">x.</param>
    /// <param name="serverStep">Given (Δ, model initialised to x), updates the model in place to x'.</param>
    public WeightedMeanAggregator(string strategy, ReadOnlyMemory<float> globalModel, Action<float[], float[]> serverStep)
        : base(strategy, globalModel)
    {
        _sum = new float[globalModel.Length];
        _serverStep = serverStep;
    }

    protected override void Fold(ClientUpdate update)
    {
        TensorPrimitives.MultiplyAdd(update.Delta, (float)update.NumExamples, _sum, _sum);
        _weight += update.NumExamples;
    }

    /// <inheritdoc />
    public void AddEncoded(EncodedClientUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        ValidateContributor(update.ClientId, update.NumExamples);
        try
        {
            // Validates the whole payload (codec, length, finite values) before it touches the sum.
            DeltaCodecs.DecodeAdd(update.EncodedDelta.Span, (float)update.NumExamples, _sum);
        }
        catch (CodecException e)
        {
            throw new ArgumentException($"{Strategy}: client '{update.ClientId}' sent a malformed encoded delta: {e.Message}", e);
        }

        _weight += update.NumExamples;
        Record(update.ClientId, update.NumExamples, update.Metrics);
    }

    /// <inheritdoc />
    public IEncodedUpdateFold BeginEncodedFold(string clientId, long numExamples, long encodedLength)
    {
        ValidateContributor(clientId, numExamples);
        ArgumentOutOfRangeException.ThrowIfNegative(encodedLength);
        if (_streams.ContainsKey(clientId))
        {
            throw new ArgumentException($"{Strategy}: client '{clientId}' already has an update streaming in.");
        }

        StreamingDeltaDecoder decoder;
        try
        {
            decoder = new StreamingDeltaDecoder(_sum, numExamples, encodedLength);
        }
        catch (CodecException e)
        {
            throw new ArgumentException($"{Strategy}: client '{clientId}' sent a malformed encoded delta: {e.Message}", e);
        }

        var stream = new EncodedStream(this, clientId, numExamples, decoder);
        _streams[clientId] = stream;
        return stream;
    }

    protected override float[] Complete(Dictionary<string, double> metrics)
    {
        foreach (var stream in _streams.Values.ToArray())
        {
            stream.Abort();
        }

        TensorPrimitives.Multiply(_sum, (float)(1.0 / _weight), _sum);
        RecordNorm(metrics, _sum);
        var model = CopyGlobal();
        _serverStep(_sum, model);
        return model;
    }

    private sealed class EncodedStream(WeightedMeanAggregator owner, string clientId, long numExamples, StreamingDeltaDecoder decoder) : IEncodedUpdateFold
    {
        private bool _closed;

        public string ClientId => clientId;

        public bool IsComplete => !_closed && decoder.IsComplete;

        public void Append(ReadOnlyMemory<byte> segment)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            try
            {
                decoder.Append(segment);
            }
            catch (CodecException e)
            {
                throw new ArgumentException($"{owner.Strategy}: client '{clientId}' sent a malformed encoded delta: {e.Message}", e);
            }
        }

        public void Commit(IReadOnlyDictionary<string, double> metrics)
        {
            ArgumentNullException.ThrowIfNull(metrics);
            ObjectDisposedException.ThrowIf(_closed, this);
            try
            {
                decoder.Complete();
                owner.ValidateContributor(clientId, numExamples);
            }
            catch (Exception e) when (e is CodecException or ArgumentException or InvalidOperationException)
            {
                Abort();
                throw e as ArgumentException ?? new ArgumentException($"{owner.Strategy}: client '{clientId}' sent an incomplete encoded delta: {e.Message}", e);
            }

            _closed = true;
            owner._streams.Remove(clientId);
            decoder.Dispose();
            owner._weight += numExamples;
            owner.Record(clientId, numExamples, metrics);
        }

        public void Abort()
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            owner._streams.Remove(clientId);
            decoder.Revert();
            decoder.Dispose();
        }
    }
}
