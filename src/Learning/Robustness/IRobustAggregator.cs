namespace Federated.Learning.Robustness;

/// <summary>
/// A robust aggregation rule: a pure function from one round's individual updates (model deltas of equal length,
/// each with a positive weight, usually its example count) to one aggregated delta. Implementations validate
/// their parameters in the constructor, keep no state between calls, do no I/O and know nothing of transport,
/// so they compose (<see cref="Bucketing"/>, <see cref="NormBounding"/> wrap another rule) and serve as the
/// aggregation stage of any mean-based strategy through <see cref="RobustStrategy"/>.
/// </summary>
public interface IRobustAggregator
{
    /// <summary>
    /// The canonical specification, e.g. <c>trimmed_mean:beta=0.2</c>; <see cref="RobustAggregators.Parse"/>
    /// turns it back into an equal aggregator.
    /// </summary>
    string Name { get; }

    /// <summary>
    /// Aggregates <paramref name="updates"/> (n ≥ 1 vectors of one length d ≥ 1, finite values) with
    /// <paramref name="weights"/> (n positive, finite numbers; each rule documents whether it uses them) into a
    /// new vector of length d. The inputs are not modified. Throws <see cref="ArgumentException"/> when the
    /// inputs do not fit the rule (e.g. Krum with n &lt; 2f + 3).
    /// </summary>
    float[] Aggregate(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, RobustContext? context = null);
}

/// <summary>What a rule may know besides the updates: the round, the previous aggregate, and a sink for its metrics.</summary>
public sealed class RobustContext
{
    /// <summary>The round number (mixed into <see cref="Bucketing"/>'s permutation seed).</summary>
    public int Round { get; init; }

    /// <summary>
    /// The previous round's aggregate (or server momentum), empty when there is none; <see cref="CenteredClipping"/>
    /// starts from it.
    /// </summary>
    public ReadOnlyMemory<float> Previous { get; init; }

    /// <summary>Where rules record diagnostics (keys <c>robust.*</c>, e.g. <c>robust.clipped</c>); null to discard them.</summary>
    public IDictionary<string, double>? Metrics { get; init; }

    internal void Record(string key, double value)
    {
        if (Metrics is not null)
        {
            Metrics[key] = value;
        }
    }
}
