using System.Buffers;
using System.Globalization;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Transfers;
using Federated.Learning.Compression;
using Federated.Learning.Strategies;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Rounds;

/// <summary>
/// What <c>Coordinator:Compression</c> changes in a round, for the round loop: the upload instructions a train task
/// carries, the global model each agent is sent, and reading codec-encoded updates.
/// </summary>
/// <remarks>
/// <para>
/// Downlink: the coordinator keeps, per agent, a replica of the model that agent holds (as the agent reconstructed it)
/// and its version (<c>{run}-r{round}.{incarnation}</c>: the incarnation, drawn when the coordinator starts, keeps a
/// resumed coordinator's versions apart from those its previous process sent). An agent with a replica gets a payload of its own whose <c>model</c> tensor
/// is encode(global − replica) with <c>base_version</c> = the replica's version; the replica then moves by exactly what
/// the agent adds (<see cref="DownlinkDeltaEncoder"/>), so lossy codecs never let the two drift. Every other agent gets
/// the shared dense payload (the full model, <c>model_version</c> stamped) and its replica starts as a copy of the
/// global model. A replica counts once the agent's train result comes back ok (the agent saves its state before it
/// answers); an agent that fails, vanishes or is not needed by the round's end is forgotten and gets the full model
/// next time, so a replica the agent may not hold is never used. Memory: one model-sized replica per tracked agent.
/// </para>
/// <para>Single-threaded: the round loop calls it from its one thread.</para>
/// </remarks>
internal sealed class RoundCompression
{
    private readonly IDeltaCodec? _uplink;
    private readonly bool _errorFeedback;
    private readonly DownlinkDeltaEncoder? _downlink;
    private readonly long _seed;
    private readonly int _chunkBytes;
    private readonly Dictionary<string, Replica> _replicas = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unconfirmed = new(StringComparer.Ordinal);
    private readonly List<string> _published = [];
    private readonly ArrayBufferWriter<byte> _encoded = new();
    private readonly string _incarnation = Guid.NewGuid().ToString("N")[..8];

    public RoundCompression(CompressionSettings settings, long seed, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _uplink = settings.ResolveUplink();
        _errorFeedback = settings.ErrorFeedback;
        _downlink = settings.ResolveDownlink() is { } codec ? new DownlinkDeltaEncoder(codec) : null;
        _seed = seed;
        _chunkBytes = chunkBytes;
    }

    /// <summary>True when agents upload codec-encoded deltas.</summary>
    public bool UplinkEncoded => _uplink is not null;

    /// <summary>Agents whose model version is tracked (for tests and logs).</summary>
    public int TrackedAgents => _replicas.Count;

    /// <summary>Adds the upload's codec and error-feedback switch to a train task's config (nothing without an uplink codec).</summary>
    public void ConfigureUpload(IDictionary<string, string> config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (_uplink is not null)
        {
            config[CompressionKeys.UplinkCodec] = _uplink.Spec;
            config[CompressionKeys.ErrorFeedback] = _errorFeedback ? "true" : "false";
        }
    }

    /// <summary>Stamps the round's shared (full, dense) global-model payload with its version when the downlink is compressed.</summary>
    public void StampShared(Payload shared, string runId, int round)
    {
        ArgumentNullException.ThrowIfNull(shared);
        if (_downlink is not null)
        {
            shared.Metadata[CompressionKeys.ModelVersion] = Version(runId, round);
        }
    }

    /// <summary>
    /// The payload to send <paramref name="agentId"/>: its own compressed delta (published on <paramref name="transfers"/>
    /// until <see cref="EndRound"/>) when its replica is known, else <paramref name="sharedSealed"/>.
    /// </summary>
    public SealedPayload ModelFor(string agentId, string runId, int round, float[] global, Payload shared, SealedPayload sharedSealed, TransferHub transfers)
    {
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(shared);
        ArgumentNullException.ThrowIfNull(sharedSealed);
        ArgumentNullException.ThrowIfNull(transfers);
        if (_downlink is null)
        {
            return sharedSealed;
        }

        var version = Version(runId, round);
        _unconfirmed.Add(agentId);
        if (!_replicas.TryGetValue(agentId, out var replica))
        {
            _replicas[agentId] = new Replica(global.ToArray(), version);
            return sharedSealed;
        }

        _encoded.ResetWrittenCount();
        _downlink.EncodeDelta(global, replica.Model, _encoded, CodecRandom.ForSender(agentId, _seed, round));
        var payload = shared.Clone();
        payload.Tensors.Remove(payload.Tensors.First(t => t.Name == PayloadCodec.ModelTensor));
        PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, _encoded.WrittenSpan, global.Length);
        payload.Metadata[CompressionKeys.BaseVersion] = replica.Version;
        payload.Metadata[CompressionKeys.ModelVersion] = version;
        replica.Version = version;
        var own = new SealedPayload($"{sharedSealed.TransferId}-{agentId}", payload, _chunkBytes);
        transfers.Publish(own);
        _published.Add(own.TransferId);
        return own;
    }

    /// <summary>The agent answered its train task ok: it holds the model it was sent this round.</summary>
    public void Delivered(string agentId) => _unconfirmed.Remove(agentId);

    /// <summary>Forgets the replicas of agents that did not confirm this round's model and retires the round's own payloads.</summary>
    public void EndRound(TransferHub transfers)
    {
        ArgumentNullException.ThrowIfNull(transfers);
        foreach (var agentId in _unconfirmed)
        {
            _replicas.Remove(agentId);
        }

        _unconfirmed.Clear();
        foreach (var id in _published)
        {
            transfers.Retire(id);
        }

        _published.Clear();
    }

    /// <summary>
    /// Folds a codec-encoded model delta straight into <paramref name="aggregator"/> when it folds encoded deltas (the
    /// weighted means); false when the caller must add a dense update (<see cref="ReadDelta"/>) instead.
    /// </summary>
    /// <exception cref="TransferException">The model tensor is missing or of another length.</exception>
    /// <exception cref="ArgumentException">The aggregator refused the update, or its payload is malformed.</exception>
    public static bool TryFoldEncoded(IRoundAggregator aggregator, string agentId, TaskResult result, Payload payload, long length)
    {
        ArgumentNullException.ThrowIfNull(result);
        var model = PayloadCodec.GetTensor(payload, PayloadCodec.ModelTensor, length);
        if (model.Encoding != TensorEncoding.Codec || aggregator is not IEncodedUpdateAggregator sink)
        {
            return false;
        }

        sink.AddEncoded(new EncodedClientUpdate
        {
            ClientId = agentId,
            NumExamples = result.NumExamples,
            EncodedDelta = model.Data.Memory,
            Metrics = result.Metrics.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
        });
        return true;
    }

    /// <summary>The model delta of an update as dense floats, decoding a codec-encoded one.</summary>
    /// <exception cref="TransferException">The tensor is missing, of another length, or a malformed codec payload.</exception>
    public static float[] ReadDelta(Payload payload, long length)
    {
        var model = PayloadCodec.GetTensor(payload, PayloadCodec.ModelTensor, length);
        if (model.Encoding != TensorEncoding.Codec)
        {
            return PayloadCodec.ReadDense(payload, PayloadCodec.ModelTensor, length);
        }

        var delta = new float[length];
        try
        {
            DeltaCodecs.Decode(model.Data.Span, delta);
        }
        catch (CodecException e)
        {
            throw new TransferException($"Tensor '{PayloadCodec.ModelTensor}' is a malformed codec payload: {e.Message}", e);
        }

        return delta;
    }

    private string Version(string runId, int round) => string.Create(CultureInfo.InvariantCulture, $"{runId}-r{round}.{_incarnation}");

    private sealed class Replica(float[] model, string version)
    {
        public float[] Model { get; } = model;

        public string Version { get; set; } = version;
    }
}
