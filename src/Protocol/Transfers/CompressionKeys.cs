namespace Federated.Protocol.Transfers;

/// <summary>
/// The keys through which compression travels: a train task's <c>config</c> entries that tell the agent how to encode
/// its upload, and a global-model payload's <c>metadata</c> entries that version a compressed downlink.
/// </summary>
public static class CompressionKeys
{
    /// <summary>Task config: the codec spec the agent encodes its model delta with (absent: dense float32).</summary>
    public const string UplinkCodec = "uplink_codec";

    /// <summary>Task config: <c>true</c> when the agent adds what compression dropped to its next delta (error feedback).</summary>
    public const string ErrorFeedback = "error_feedback";

    /// <summary>Payload metadata: the model version the agent holds once it has applied the payload.</summary>
    public const string ModelVersion = "model_version";

    /// <summary>Payload metadata: the version a codec-encoded model delta must be added to (absent: the payload holds the full model).</summary>
    public const string BaseVersion = "base_version";
}
