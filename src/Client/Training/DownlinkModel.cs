using Federated.Client.State;
using Federated.Learning.Compression;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;

namespace Federated.Client.Training;

/// <summary>
/// The agent's half of compressed downlinks: the global model as this agent reconstructed it, and its version. A full
/// model payload that carries a <c>model_version</c> replaces it; a codec-encoded delta with a <c>base_version</c> is
/// added to it with <see cref="DownlinkDeltaEncoder.ApplyDelta"/>, which gives bit for bit what the coordinator's
/// replica of this agent holds. Saved in the state directory with the agent's state, so a restarted agent still takes
/// deltas. Not thread-safe (the agent's torch thread uses it).
/// </summary>
internal sealed class DownlinkModel(AgentStateStore store)
{
    private float[]? _model;
    private string? _version;
    private string? _fingerprint;
    private bool _dirty;

    /// <summary>Bytes of the reconstructed global model held in memory (0 without one).</summary>
    internal long Bytes => (_model?.Length ?? 0) * (long)sizeof(float);

    /// <summary>The version of the model held (null when none is).</summary>
    public string? Version => _version;

    /// <summary>
    /// The global model <paramref name="payload"/> carries, for a model of layout <paramref name="fingerprint"/> and
    /// <paramref name="length"/> floats. The returned array must not be modified.
    /// </summary>
    /// <exception cref="TransferException">The payload's model tensor is missing, of another length, or a malformed codec payload, or a delta lacks its versions.</exception>
    /// <exception cref="InvalidOperationException">The payload is a delta against a version this agent does not hold.</exception>
    public float[] Resolve(Payload payload, string fingerprint, int length)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var tensor = PayloadCodec.GetTensor(payload, PayloadCodec.ModelTensor, length);
        var version = payload.Metadata.GetValueOrDefault(CompressionKeys.ModelVersion);
        if (tensor.Encoding != TensorEncoding.Codec)
        {
            var global = PayloadCodec.ReadDense(payload, PayloadCodec.ModelTensor, length);
            if (!string.IsNullOrEmpty(version))
            {
                (_model, _version, _fingerprint, _dirty) = (global, version, fingerprint, true);
            }

            return global;
        }

        var baseVersion = payload.Metadata.GetValueOrDefault(CompressionKeys.BaseVersion);
        if (string.IsNullOrEmpty(version) || string.IsNullOrEmpty(baseVersion))
        {
            throw new TransferException($"The model is a codec-encoded delta, but the payload lacks its {CompressionKeys.ModelVersion} or {CompressionKeys.BaseVersion}.");
        }

        var held = Held(fingerprint, length);
        if (held is null || _version != baseVersion)
        {
            throw new InvalidOperationException(
                $"The coordinator sent a model delta against version '{baseVersion}', but this agent holds {(held is null ? "no reconstructed model" : $"version '{_version}'")}; the coordinator sends the full model after this failure.");
        }

        try
        {
            DownlinkDeltaEncoder.ApplyDelta(tensor.Data.Span, held);
        }
        catch (CodecException e)
        {
            throw new TransferException($"The model delta is a malformed codec payload: {e.Message}", e);
        }

        (_version, _dirty) = (version, true);
        return held;
    }

    /// <summary>Saves the model and its version when they changed since the last save.</summary>
    public void Persist()
    {
        if (_dirty && _model is not null)
        {
            store.SaveDownlinkModel(_model, _version!, _fingerprint!);
            _dirty = false;
        }
    }

    private float[]? Held(string fingerprint, int length)
    {
        if (_model is not null && _fingerprint == fingerprint && _model.Length == length)
        {
            return _model;
        }

        (_model, _version, _fingerprint) = store.LoadDownlinkModel(fingerprint, length) is { } saved
            ? (saved.Model, saved.Version, fingerprint)
            : (null, null, null);
        return _model;
    }
}
