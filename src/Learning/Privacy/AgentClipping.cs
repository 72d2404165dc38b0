using System.Globalization;

namespace Federated.Learning.Privacy;

/// <summary>
/// The agent-side clipping stage: when the coordinator's fit configuration carries <see cref="BoundKey"/> (it does
/// when a <see cref="DifferentialPrivacyStrategy"/> trusts agents to clip), the agent clips its delta to that L2
/// bound before upload and reports, under <see cref="ClippedMetric"/>, whether it had to (adaptive clipping needs
/// that bit). A pure function over the delta and the configuration: no I/O.
/// </summary>
public static class AgentClipping
{
    /// <summary>The fit-configuration key carrying the clipping bound C (invariant-culture number).</summary>
    public const string BoundKey = "dp_clip_bound";

    /// <summary>The update-metric key: 1 when the agent's delta was clipped, 0 when it fit under the bound.</summary>
    public const string ClippedMetric = "dp_clipped";

    /// <summary>
    /// Clips <paramref name="delta"/> in place to the bound in <paramref name="configuration"/> and returns what it
    /// did; null (and the delta untouched) when the configuration asks for no agent-side clipping. Throws
    /// <see cref="FormatException"/> for a bound that is not a positive number.
    /// </summary>
    public static ClipResult? Apply(Span<float> delta, IReadOnlyDictionary<string, string> configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (!configuration.TryGetValue(BoundKey, out var text))
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var bound) || !(bound > 0) || !double.IsFinite(bound))
        {
            throw new FormatException($"The fit configuration's '{BoundKey}' must be a positive number, not '{text}'.");
        }

        return L2Clipping.Clip(delta, bound);
    }

    /// <summary>Adds <see cref="ClippedMetric"/> for <paramref name="result"/> to an update's <paramref name="metrics"/>.</summary>
    public static void Report(ClipResult result, IDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        metrics[ClippedMetric] = result.Clipped ? 1 : 0;
    }
}
