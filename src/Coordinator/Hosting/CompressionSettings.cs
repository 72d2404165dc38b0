using Federated.Learning.Compression;

namespace Federated.Coordinator.Hosting;

/// <summary>
/// Compressed transfers (<c>Coordinator:Compression</c>): the codec agents encode their model deltas with, whether
/// they keep what it drops for the next round (error feedback), and the codec of the model deltas sent to agents.
/// Specs use the grammar of <see cref="DeltaCodecs.Parse"/> (<c>q8</c>, <c>topk:ratio=0.01+q8</c>, …); <c>none</c>
/// keeps dense float32.
/// </summary>
public sealed class CompressionSettings
{
    /// <summary>The spec that turns a direction's compression off.</summary>
    public const string None = "none";

    /// <summary>Codec of the agents' uploads, announced in every train task (default <c>none</c>: dense float32).</summary>
    public string Uplink { get; set; } = None;

    /// <summary>Agents add what the uplink codec dropped to their next delta (default true; ignored without an uplink codec).</summary>
    public bool ErrorFeedback { get; set; } = true;

    /// <summary>
    /// Codec of the global model sent to agents (default <c>none</c>: the full dense model to everyone). When set, an
    /// agent whose model version the coordinator tracks gets the delta against that version; others get the full model.
    /// </summary>
    public string Downlink { get; set; } = None;

    /// <summary>The uplink codec, or null for dense float32.</summary>
    /// <exception cref="ArgumentException">The spec is invalid (the start-up validation reports it first).</exception>
    public IDeltaCodec? ResolveUplink() => Resolve(Uplink);

    /// <summary>The downlink codec, or null for the full dense model.</summary>
    /// <exception cref="ArgumentException">The spec is invalid (the start-up validation reports it first).</exception>
    public IDeltaCodec? ResolveDownlink() => Resolve(Downlink);

    /// <summary>
    /// What is wrong with these settings, one sentence per problem; empty when valid. <paramref name="key"/> names a
    /// property (<c>Uplink</c>, <c>Downlink</c>, <c>ErrorFeedback</c>) the way the reader wrote it (configuration key, scenario key).
    /// </summary>
    public IReadOnlyList<string> Validate(Func<string, string> key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var errors = new List<string>();
        var uplink = Check(errors, key(nameof(Uplink)), Uplink);
        Check(errors, key(nameof(Downlink)), Downlink);
        if (uplink is { Name: "randk" } && ErrorFeedback && uplink.Spec.Contains("scaled=true", StringComparison.Ordinal))
        {
            errors.Add($"{key(nameof(Uplink))} '{Uplink}' scales the kept values by n/k, and error feedback then carries a residual that grows every round: " +
                $"add scaled=false (e.g. 'randk:ratio=0.01,scaled=false+q8') or set {key(nameof(ErrorFeedback))} to false.");
        }

        return errors;
    }

    private static IDeltaCodec? Check(List<string> errors, string key, string spec)
    {
        try
        {
            return Resolve(spec);
        }
        catch (ArgumentException e)
        {
            errors.Add($"{key}: {e.Message} Use '{None}' for dense float32.");
            return null;
        }
    }

    private static IDeltaCodec? Resolve(string? spec) =>
        string.IsNullOrWhiteSpace(spec) || string.Equals(spec.Trim(), None, StringComparison.OrdinalIgnoreCase) ? null : DeltaCodecs.Parse(spec);
}
