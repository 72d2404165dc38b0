using Federated.Learning.Asynchronous;

namespace Federated.Coordinator.Hosting;

/// <summary>
/// Buffered asynchronous aggregation (the <c>Coordinator:Async</c> section, used when <c>Coordinator:Mode</c> is
/// <c>fedbuff</c>): <see cref="Concurrency"/> agents train at any time, each on the latest model when it starts; every
/// <see cref="BufferSize"/> updates make one new global version (one row of the metrics, one "round" of
/// <see cref="CoordinatorOptions.Rounds"/>).
/// </summary>
public sealed class AsyncSettings
{
    /// <summary>K: updates per flush.</summary>
    public int BufferSize { get; set; } = 10;

    /// <summary>Agents training at once (the coordinator hands a new task to an idle agent whenever fewer are busy).</summary>
    public int Concurrency { get; set; } = 20;

    /// <summary>Updates more than this many versions behind are rejected (and counted in <c>rejected_stale</c>).</summary>
    public int MaxStaleness { get; set; } = 10;

    /// <summary>η_g: the buffer's mean delta is scaled by this.</summary>
    public double ServerLearningRate { get; set; } = 1.0;

    /// <summary>The staleness weighting.</summary>
    public StalenessSettings Staleness { get; set; } = new();

    /// <summary>Updates one agent may have in one buffer (the cap central DP's sensitivity rests on); default 1.</summary>
    public int MaxContributionsPerFlush { get; set; } = 1;

    /// <summary>Updates one agent may contribute over the run; 0 = no cap. An agent at its cap is not asked again.</summary>
    public long MaxContributionsPerAgent { get; set; }

    /// <summary>What is wrong (nothing when valid), each message naming the key.</summary>
    public IEnumerable<string> Validate()
    {
        const string Prefix = "Coordinator:Async:";
        if (Staleness is null)
        {
            yield return $"{Prefix}Staleness must be a section.";
            yield break;
        }

        if (!StalenessWeighting.Names.Contains(Staleness.Function.Trim().ToLowerInvariant()))
        {
            yield return $"{Prefix}Staleness:Function must be one of {string.Join(", ", StalenessWeighting.Names)}, not '{Staleness.Function}'.";
            yield break;
        }

        foreach (var error in ToOptions(0, 0).Validate())
        {
            yield return $"{Prefix}: {error}";
        }

        if (Concurrency is < 1 or > 100_000)
        {
            yield return $"{Prefix}Concurrency must be between 1 and 100000 (got {Concurrency}).";
        }
    }

    /// <summary>The buffer's options; <paramref name="clipBound"/> and <paramref name="noiseMultiplier"/> are central DP's (0 = off).</summary>
    public FedBuffOptions ToOptions(double clipBound, double noiseMultiplier) => new()
    {
        BufferSize = BufferSize,
        MaxStaleness = MaxStaleness,
        ServerLearningRate = ServerLearningRate,
        Staleness = new StalenessWeighting(
            Staleness.Function.Trim().ToLowerInvariant() switch { "constant" => StalenessKind.Constant, "hinge" => StalenessKind.Hinge, _ => StalenessKind.Polynomial },
            Staleness.A,
            Staleness.B),
        MaxContributionsPerFlush = MaxContributionsPerFlush,
        MaxContributionsPerAgent = MaxContributionsPerAgent,
        ClipBound = clipBound,
        NoiseMultiplier = noiseMultiplier,
    };
}

/// <summary>The staleness weighting w(s): <c>constant</c>, <c>polynomial</c> (1+s)^−a, or <c>hinge</c> (1 up to b, then 1/(a(s−b)+1)).</summary>
public sealed class StalenessSettings
{
    /// <summary><c>constant</c>, <c>polynomial</c> (the default) or <c>hinge</c>.</summary>
    public string Function { get; set; } = "polynomial";

    /// <summary>The polynomial's exponent, the hinge's slope.</summary>
    public double A { get; set; } = 0.5;

    /// <summary>The hinge's knee.</summary>
    public double B { get; set; } = 4;
}

/// <summary>
/// A virtual clock for simulations (the <c>Coordinator:VirtualClock</c> section): each agent's compute time for a task
/// is drawn once from <see cref="Distribution"/> (keyed by <see cref="Seed"/> and the agent id) and the coordinator
/// keeps a virtual time — the synchronous loop adds the slowest sampled agent's time per round, the asynchronous loop
/// processes results in the order of their virtual finishing times — so the machine's cores do not decide the result.
/// Both write <c>virtual_s</c> into every metrics row.
/// </summary>
public sealed class VirtualClockSettings
{
    /// <summary>Turns the virtual clock on.</summary>
    public bool Enabled { get; set; }

    /// <summary><c>uniform</c> (compute time uniform in [m, m·spread]), <c>loguniform</c> or <c>lognormal</c> (5th to 95th percentile = spread).</summary>
    public string Distribution { get; set; } = "lognormal";

    /// <summary>Ratio of the slowest to the fastest agent's compute time (the 95th to the 5th percentile for lognormal).</summary>
    public double Spread { get; set; } = 10;

    /// <summary>m: the fastest agent's seconds per task (uniform, loguniform), the median's for lognormal.</summary>
    public double Seconds { get; set; } = 10;

    /// <summary>Keys the draw.</summary>
    public long Seed { get; set; } = 1;

    /// <summary>What is wrong (nothing when valid).</summary>
    public IEnumerable<string> Validate()
    {
        if (Distribution is not ("uniform" or "loguniform" or "lognormal"))
        {
            yield return $"Coordinator:VirtualClock:Distribution must be uniform, loguniform or lognormal, not '{Distribution}'.";
        }

        if (!(Spread is >= 1 and <= 1e6))
        {
            yield return $"Coordinator:VirtualClock:Spread must be between 1 and 1000000 (got {Spread}).";
        }

        if (!(Seconds is > 0 and <= 1e9))
        {
            yield return $"Coordinator:VirtualClock:Seconds must be positive (got {Seconds}).";
        }
    }
}
