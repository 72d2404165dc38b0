using System.Globalization;
using Federated.Learning.Robustness;
using Federated.Learning.SecureAggregation;

namespace Federated.Coordinator.Hosting;

/// <summary>
/// Secure aggregation (the <c>Coordinator:SecureAggregation</c> section): each round runs the four SecAgg+ stages over
/// the agents' sessions (advertise keys, share keys, masked input, unmasking), and the coordinator only ever sees the
/// sum of the clipped, quantised updates. Off by default. A stage that ends at its deadline turns the agents that did
/// not answer into dropouts; the round completes if every agent that must be unmasked keeps at least
/// <see cref="Threshold"/> live neighbours, and fails cleanly (the model unchanged) otherwise.
/// </summary>
public sealed class SecureAggregationSettings
{
    /// <summary>Run every round as a SecAgg+ round (default false).</summary>
    public bool Enabled { get; set; }

    /// <summary>b: masked vectors live in Z_{2^b} (2 to 32, default 32); the sum of the agents' levels must fit.</summary>
    public int RingBits { get; set; } = 32;

    /// <summary>c: each coordinate of an agent's (example-weighted) delta is clipped to [−c, c] before quantisation (default 1).</summary>
    public double ClipRange { get; set; } = 1.0;

    /// <summary>k: neighbours per agent (0: 2⌈log₂ n⌉, capped at n − 1; n − 1 is the complete graph of the original protocol).</summary>
    public int Degree { get; set; }

    /// <summary>t: shares needed to reconstruct a secret (0: ⌊k/2⌋ + 1).</summary>
    public int Threshold { get; set; }

    /// <summary>Round stochastically (unbiased) rather than to the nearest level (default true).</summary>
    public bool StochasticRounding { get; set; } = true;

    /// <summary>Seconds the share-keys stage waits for the agents' encrypted shares (default 30).</summary>
    public double ShareKeysSeconds { get; set; } = 30;

    /// <summary>Seconds the masked-input stage waits for the masked uploads (default 120).</summary>
    public double MaskedInputSeconds { get; set; } = 120;

    /// <summary>Seconds the unmasking stage waits for the survivors' shares (default 30).</summary>
    public double UnmaskSeconds { get; set; } = 30;

    /// <summary>
    /// Distributed discrete noise (the <c>Noise</c> subsection): each agent clips its update in L2, scales, rounds and adds
    /// Skellam noise before masking, so that the unmasked sum is differentially private (off while Multiplier is 0).
    /// </summary>
    public DistributedNoiseSettings Noise { get; set; } = new();

    /// <summary>
    /// The fewest survivors whose sum may be unmasked, per bucket (0: 1 without noise; with noise max(t + 1, ⌈n/2⌉)).
    /// With noise each agent adds 1/n_min of the variance the sum must carry.
    /// </summary>
    public int MinSurvivors { get; set; }

    /// <summary>
    /// B: agents per bucket (0: one bucket of all the round's agents). Each bucket of B to 2B − 1 agents, drawn at
    /// random every round, runs its own SecAgg+ instance; <see cref="BucketAggregator"/> combines the bucket means.
    /// </summary>
    public int BucketSize { get; set; }

    /// <summary>The robust rule across bucket means (<see cref="RobustAggregators.Parse"/>; default median).</summary>
    public string BucketAggregator { get; set; } = "median";

    /// <summary>Buckets that must unmask for the round to complete (0: more than half of them).</summary>
    public int MinBuckets { get; set; }

    /// <summary>The buckets a round of <paramref name="buckets"/> buckets needs.</summary>
    public int ResolveMinBuckets(int buckets) => Math.Min(buckets, MinBuckets > 0 ? MinBuckets : (buckets / 2) + 1);

    /// <summary>The degree for a round of <paramref name="agents"/> agents (≥ 1 agents; 0 for a single agent).</summary>
    public int ResolveDegree(int agents) => Math.Min(agents - 1, Degree > 0 ? Degree : NeighbourGraph.DefaultDegree(agents));

    /// <summary>The threshold for degree <paramref name="degree"/>.</summary>
    public int ResolveThreshold(int degree) => Threshold > 0 ? Threshold : (degree / 2) + 1;

    /// <summary>The library's options for a round of <paramref name="agents"/> agents.</summary>
    public SecureAggregationOptions ToOptions(int agents)
    {
        var degree = ResolveDegree(agents);
        return new SecureAggregationOptions
        {
            RingBits = RingBits,
            ClipRange = ClipRange,
            Degree = degree,
            Threshold = ResolveThreshold(degree),
            StochasticRounding = StochasticRounding,
            Noise = Noise.Multiplier > 0 ? new DistributedNoiseOptions { NoiseMultiplier = Noise.Multiplier, L2Clip = Noise.L2Clip } : null,
            MinSurvivors = MinSurvivors > 0 ? MinSurvivors : null,
        };
    }

    /// <summary>
    /// What is wrong with these settings and with what they are combined with, one sentence per problem; empty when
    /// valid or disabled.
    /// </summary>
    public IReadOnlyList<string> Validate(CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (!Enabled)
        {
            return errors;
        }

        const string S = CoordinatorOptions.Section + ":SecureAggregation:";
        errors.AddRange(ValidateValues(name => S + name));
        if (RingBits is >= 2 and <= 32 && options.MinAvailable > 0 && ((1UL << RingBits) - 1) / (ulong)Math.Max(1, options.MinAvailable) < 1)
        {
            errors.Add($"{S}RingBits {RingBits} leaves no quantisation level for {options.MinAvailable} agents; raise it.");
        }

        var refusal = " cannot be combined with " + S + "Enabled: ";
        if (!string.Equals(options.Compression.Uplink.Trim(), CompressionSettings.None, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{CoordinatorOptions.Section}:Compression:Uplink '{options.Compression.Uplink}'{refusal}the coordinator never sees one agent's payload to decode it; " +
                $"secure aggregation quantises every update into the ring itself (lower {S}RingBits to shrink the upload).");
        }

        if (options.Privacy.Enabled)
        {
            errors.Add($"{CoordinatorOptions.Section}:Privacy:Enabled{refusal}DP-FedAvg clips and noises individual updates on the coordinator, which secure aggregation hides; " +
                $"for differential privacy under secure aggregation set {S}Noise:Multiplier and {S}Noise:L2Clip (distributed Skellam noise added by the agents).");
        }

        if (options.Continual.ConsolidateFisher)
        {
            errors.Add($"{CoordinatorOptions.Section}:Continual:ConsolidateFisher{refusal}each agent's Fisher diagonal would travel in the clear.");
        }

        var strategy = options.Strategy.Trim().ToLowerInvariant();
        if (strategy is "scaffold" or "fednova")
        {
            errors.Add($"{CoordinatorOptions.Section}:Strategy '{options.Strategy}'{refusal}it needs each agent's {(strategy == "scaffold" ? "control variate" : "local step count")} beside its update.");
        }

        if (options.StrategyOptions.TryGetValue("aggregator", out var aggregator) && !string.Equals(aggregator.Trim(), "mean", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{CoordinatorOptions.Section}:StrategyOptions:aggregator '{aggregator}'{refusal}a robust rule needs the individual updates, which secure aggregation hides; " +
                $"set {S}BucketSize and {S}BucketAggregator to apply it across bucket sums instead.");
        }

        foreach (var option in new[] { "max_norm_ratio", "min_norm_ratio", "max_norm" })
        {
            if (options.StrategyOptions.ContainsKey(option))
            {
                errors.Add($"{CoordinatorOptions.Section}:StrategyOptions:{option}{refusal}update validation needs each agent's update norm; use {S}ClipRange (or {S}Noise:L2Clip) to bound the updates, and {S}BucketSize with {S}BucketAggregator for a robust rule across bucket sums.");
            }
        }

        return errors;
    }

    /// <summary>
    /// What is wrong with the values themselves, one sentence per problem; <paramref name="key"/> names a property the
    /// way the reader wrote it (configuration key, scenario key).
    /// </summary>
    public IReadOnlyList<string> ValidateValues(Func<string, string> key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var errors = new List<string>();
        if (RingBits is < 2 or > 32)
        {
            errors.Add($"{key(nameof(RingBits))} must be between 2 and 32, not {RingBits}.");
        }

        if (!(ClipRange > 0 && double.IsFinite(ClipRange)))
        {
            errors.Add($"{key(nameof(ClipRange))} must be positive, not {ClipRange.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (Degree < 0 || Threshold < 0)
        {
            errors.Add($"{key(nameof(Degree))} and {key(nameof(Threshold))} must be 0 (the default) or positive, not {Degree} and {Threshold}.");
        }
        else if (Degree > 0 && Threshold > Degree)
        {
            errors.Add($"{key(nameof(Threshold))} ({Threshold}) cannot exceed {key(nameof(Degree))} ({Degree}): no agent would hold enough shares.");
        }

        errors.AddRange(Noise.Validate(name => key(nameof(Noise) + ":" + name)));
        if (MinSurvivors < 0)
        {
            errors.Add($"{key(nameof(MinSurvivors))} must be 0 (the default) or positive, not {MinSurvivors}.");
        }

        if (BucketSize is < 0 or 1)
        {
            errors.Add($"{key(nameof(BucketSize))} must be 0 (one bucket) or at least 2, not {BucketSize}.");
        }
        else if (BucketSize > 0)
        {
            if (Threshold >= BucketSize)
            {
                errors.Add($"{key(nameof(Threshold))} ({Threshold}) must be below {key(nameof(BucketSize))} ({BucketSize}): a bucket's agents have at most B − 1 neighbours.");
            }

            if (MinSurvivors > BucketSize)
            {
                errors.Add($"{key(nameof(MinSurvivors))} ({MinSurvivors}) cannot exceed {key(nameof(BucketSize))} ({BucketSize}): no bucket could be unmasked.");
            }

            try
            {
                _ = RobustAggregators.Parse(BucketAggregator);
            }
            catch (ArgumentException e)
            {
                errors.Add($"{key(nameof(BucketAggregator))} '{BucketAggregator}' is not a robust rule: {e.Message}");
            }
        }

        if (MinBuckets < 0)
        {
            errors.Add($"{key(nameof(MinBuckets))} must be 0 (more than half of the buckets) or positive, not {MinBuckets}.");
        }

        foreach (var (name, seconds) in new[] { (nameof(ShareKeysSeconds), ShareKeysSeconds), (nameof(MaskedInputSeconds), MaskedInputSeconds), (nameof(UnmaskSeconds), UnmaskSeconds) })
        {
            if (!(seconds > 0 && seconds <= 24 * 3600))
            {
                errors.Add($"{key(name)} must be positive (at most a day), not {seconds.ToString(CultureInfo.InvariantCulture)}.");
            }
        }

        return errors;
    }
}

/// <summary>
/// Distributed discrete noise under secure aggregation (<c>Coordinator:SecureAggregation:Noise</c>): the Skellam
/// mechanism, calibrated so that the sum over the fewest survivors a round accepts carries noise of standard deviation
/// <see cref="Multiplier"/> × its L2 sensitivity, and accounted with the Skellam RDP bound (no amplification by sampling).
/// </summary>
public sealed class DistributedNoiseSettings
{
    /// <summary>z: noise standard deviation over the L2 sensitivity of the summed update (0: no noise, the default).</summary>
    public double Multiplier { get; set; }

    /// <summary>
    /// Instead of <see cref="Multiplier"/>: the ε (at <see cref="Delta"/>) the run's rounds may spend; the coordinator
    /// calibrates z for it when it starts, for the largest sum a round may have (0: off).
    /// </summary>
    public double TargetEpsilon { get; set; }

    /// <summary>C: each agent's (unweighted) delta is clipped to this L2 norm.</summary>
    public double L2Clip { get; set; }

    /// <summary>δ of the (ε, δ) guarantee reported per round (default 1e-5).</summary>
    public double Delta { get; set; } = 1e-5;

    /// <summary>Whether noise is on.</summary>
    public bool Enabled => Multiplier > 0 || TargetEpsilon > 0;

    /// <summary>What is wrong with the values, one sentence per problem; <paramref name="key"/> names a property.</summary>
    public IReadOnlyList<string> Validate(Func<string, string> key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var errors = new List<string>();
        if (!(Multiplier >= 0) || !double.IsFinite(Multiplier))
        {
            errors.Add($"{key(nameof(Multiplier))} must be 0 (no noise) or positive, not {Multiplier.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (!(TargetEpsilon >= 0) || !double.IsFinite(TargetEpsilon))
        {
            errors.Add($"{key(nameof(TargetEpsilon))} must be 0 (off) or positive, not {TargetEpsilon.ToString(CultureInfo.InvariantCulture)}.");
        }
        else if (TargetEpsilon > 0 && Multiplier > 0)
        {
            errors.Add($"Set one of {key(nameof(Multiplier))} and {key(nameof(TargetEpsilon))}, not both (the target calibrates the multiplier).");
        }

        if (!Enabled)
        {
            return errors;
        }

        if (!(L2Clip > 0) || !double.IsFinite(L2Clip))
        {
            errors.Add($"{key(nameof(L2Clip))} must be positive with {key(nameof(Multiplier))} set (the L2 norm each agent clips its delta to), not {L2Clip.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (!(Delta is > 0 and < 1))
        {
            errors.Add($"{key(nameof(Delta))} must lie in (0, 1), not {Delta.ToString(CultureInfo.InvariantCulture)}.");
        }

        return errors;
    }
}
