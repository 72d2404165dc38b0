using System.Buffers;
using Federated.Client.Agent;
using Federated.Client.State;
using Federated.Learning.Compression;
using Federated.Protocol.Transfers;

namespace Federated.Client.Training;

/// <summary>The upload compression a train task asks for.</summary>
/// <param name="Codec">The codec of the model delta.</param>
/// <param name="ErrorFeedback">Whether what the codec drops is carried to the next round.</param>
internal sealed record UploadSettings(IDeltaCodec Codec, bool ErrorFeedback)
{
    /// <summary>The settings in a task's config; null when the task asks for dense float32.</summary>
    /// <exception cref="ArgumentException">The codec spec or the error-feedback switch is invalid.</exception>
    public static UploadSettings? From(IReadOnlyDictionary<string, string> config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.TryGetValue(CompressionKeys.UplinkCodec, out var spec) || string.IsNullOrWhiteSpace(spec))
        {
            return null;
        }

        IDeltaCodec codec;
        try
        {
            codec = DeltaCodecs.Parse(spec);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"The task's {CompressionKeys.UplinkCodec} is invalid: {e.Message}", e);
        }

        var feedback = config.GetValueOrDefault(CompressionKeys.ErrorFeedback, "true") switch
        {
            "true" => true,
            "false" => false,
            var other => throw new ArgumentException($"The task's {CompressionKeys.ErrorFeedback} must be true or false, not '{other}'."),
        };
        return new UploadSettings(codec, feedback);
    }
}

/// <summary>
/// The agent's half of compressed uploads: encodes the model delta with the task's codec and, with error feedback,
/// adds the residual (what earlier encodings dropped) first and keeps what this one drops. One residual per layout:
/// it is saved in the state directory with the agent's state (so it survives restarts) and dropped when the model's
/// layout changes or a task turns error feedback off. Not thread-safe (the agent's torch thread uses it).
/// </summary>
internal sealed class UploadEncoder(AgentStateStore store, string? restoredFingerprint, ILogger logger)
{
    private ErrorFeedback? _feedback;
    private string? _fingerprint = restoredFingerprint;
    private bool _loaded;
    private bool _dirty;

    /// <summary>The error-feedback state (null without error feedback or before the first encoding).</summary>
    public ErrorFeedback? Feedback => _feedback;

    /// <summary>The current residual (empty before the first error-feedback encoding).</summary>
    public ReadOnlySpan<float> Residual => _feedback is null ? default : _feedback.Residual;

    /// <summary>Encodes <paramref name="delta"/> for a model of layout <paramref name="fingerprint"/>.</summary>
    public byte[] Encode(UploadSettings settings, ReadOnlySpan<float> delta, string fingerprint, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var output = new ArrayBufferWriter<byte>(settings.Codec.GetMaxEncodedLength(delta.Length));
        if (!settings.ErrorFeedback)
        {
            if (_feedback is not null || File.Exists(store.ResidualPath))
            {
                _feedback = null;
                _loaded = true;
                _dirty = true;
            }

            settings.Codec.Encode(delta, output, random);
            return output.WrittenSpan.ToArray();
        }

        FeedbackFor(fingerprint, delta.Length).Encode(settings.Codec, delta, output, random);
        _dirty = true;
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Saves the residual (or removes a dropped one) when it changed since the last save.</summary>
    public void Persist()
    {
        if (_dirty)
        {
            store.SaveResidual(_feedback);
            _dirty = false;
        }
    }

    private ErrorFeedback FeedbackFor(string fingerprint, int length)
    {
        if (_feedback is not null && _fingerprint == fingerprint && _feedback.Length == length)
        {
            return _feedback;
        }

        if (!_loaded && _fingerprint == fingerprint)
        {
            _feedback = store.LoadResidual(length);
            if (_feedback is not null)
            {
                AgentLog.ResidualRestored(logger, store.ResidualPath, _feedback.ResidualNorm);
            }
        }
        else if (_feedback is not null || (!_loaded && File.Exists(store.ResidualPath)))
        {
            AgentLog.ResidualDropped(logger, _fingerprint ?? "(none)", fingerprint);
            _feedback = null;
        }

        _loaded = true;
        _fingerprint = fingerprint;
        return _feedback ??= new ErrorFeedback(length);
    }
}
