using System.Globalization;
using System.Text.Json;
using Federated.Coordinator.Hosting;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// SecAgg+ secure aggregation in a scenario (the coordinator's <c>Coordinator:SecureAggregation</c> section): every
/// round runs the four stages over the agents' sessions and the coordinator sees only the sum. <see cref="Faults"/>
/// makes chosen agents drop out at a stage (or forge their key advertisement's signature).
/// </summary>
public sealed class SecureAggregationSection
{
    /// <summary>b: ring bits (2 to 32, default 32).</summary>
    public int RingBits { get; set; } = 32;

    /// <summary>c: coordinates of the example-weighted delta are clipped to [−c, c] (default 1).</summary>
    public double ClipRange { get; set; } = 1.0;

    /// <summary>k: neighbours per agent (0: 2⌈log₂ n⌉, capped at n − 1).</summary>
    public int Degree { get; set; }

    /// <summary>t: shares needed to reconstruct a secret (0: ⌊k/2⌋ + 1).</summary>
    public int Threshold { get; set; }

    /// <summary>Stochastic (unbiased) rounding into the ring (default true).</summary>
    public bool StochasticRounding { get; set; } = true;

    /// <summary>Deadline of the share-keys stage in seconds (default 30).</summary>
    public double ShareKeysSeconds { get; set; } = 30;

    /// <summary>Deadline of the masked-input stage in seconds (default 120).</summary>
    public double MaskedInputSeconds { get; set; } = 120;

    /// <summary>Deadline of the unmasking stage in seconds (default 30).</summary>
    public double UnmaskSeconds { get; set; } = 30;

    /// <summary>Distributed Skellam noise (multiplier and targetEpsilon 0: none): <c>{ "multiplier": 1.0, "l2Clip": 0.5, "delta": 1e-5 }</c> or <c>{ "targetEpsilon": 8, "l2Clip": 0.5 }</c>.</summary>
    public SecureAggregationNoise Noise { get; set; } = new();

    /// <summary>The fewest survivors whose (bucket) sum may be unmasked (0: the default rule).</summary>
    public int MinSurvivors { get; set; }

    /// <summary>B: agents per bucket (0: one bucket).</summary>
    public int BucketSize { get; set; }

    /// <summary>The robust rule across bucket means (default median).</summary>
    public string BucketAggregator { get; set; } = "median";

    /// <summary>Buckets that must unmask for the round to complete (0: more than half).</summary>
    public int MinBuckets { get; set; }

    /// <summary>Simulated faults: which agents go silent at which stage, in which round.</summary>
    public List<SecureAggregationFault> Faults { get; set; } = [];

    /// <summary>The coordinator's settings for this section.</summary>
    public SecureAggregationSettings ToSettings() => new()
    {
        Enabled = true,
        RingBits = RingBits,
        ClipRange = ClipRange,
        Degree = Degree,
        Threshold = Threshold,
        StochasticRounding = StochasticRounding,
        ShareKeysSeconds = ShareKeysSeconds,
        MaskedInputSeconds = MaskedInputSeconds,
        UnmaskSeconds = UnmaskSeconds,
        Noise = new DistributedNoiseSettings { Multiplier = Noise.Multiplier, TargetEpsilon = Noise.TargetEpsilon, L2Clip = Noise.L2Clip, Delta = Noise.Delta },
        MinSurvivors = MinSurvivors,
        BucketSize = BucketSize,
        BucketAggregator = BucketAggregator,
        MinBuckets = MinBuckets,
    };

    /// <summary>The coordinator's configuration keys for this section.</summary>
    public IEnumerable<KeyValuePair<string, string>> CoordinatorKeys()
    {
        static string Inv(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);
        const string S = "Coordinator:SecureAggregation:";
        yield return new(S + "Enabled", "true");
        yield return new(S + "RingBits", Inv(RingBits));
        yield return new(S + "ClipRange", ClipRange.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "Degree", Inv(Degree));
        yield return new(S + "Threshold", Inv(Threshold));
        yield return new(S + "StochasticRounding", StochasticRounding ? "true" : "false");
        yield return new(S + "ShareKeysSeconds", ShareKeysSeconds.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "MaskedInputSeconds", MaskedInputSeconds.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "UnmaskSeconds", UnmaskSeconds.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "Noise:Multiplier", Noise.Multiplier.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "Noise:TargetEpsilon", Noise.TargetEpsilon.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "Noise:L2Clip", Noise.L2Clip.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "Noise:Delta", Noise.Delta.ToString("R", CultureInfo.InvariantCulture));
        yield return new(S + "MinSurvivors", Inv(MinSurvivors));
        yield return new(S + "BucketSize", Inv(BucketSize));
        yield return new(S + "BucketAggregator", BucketAggregator);
        yield return new(S + "MinBuckets", Inv(MinBuckets));
    }

    /// <summary>Agent <paramref name="index"/>'s fault settings (none when it has no fault).</summary>
    public IEnumerable<KeyValuePair<string, string>> AgentSettings(int index)
    {
        if (Faults.FirstOrDefault(f => f.Agents.Contains(index)) is { } fault)
        {
            yield return new("Client:Simulation:SecAggFault", fault.Stage);
            yield return new("Client:Simulation:SecAggFaultRound", fault.Round.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Throws <see cref="ScenarioException"/> naming the first invalid key (<paramref name="source"/> names the file).</summary>
    public void Validate(Scenario scenario, string source)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        void Fail(string message) => throw new ScenarioException($"Scenario '{source}': {message}");
        foreach (var error in ToSettings().ValidateValues(name => $"'secureAggregation.{string.Join('.', name.Split(':').Select(JsonNamingPolicy.CamelCase.ConvertName))}'"))
        {
            Fail(error);
        }

        var n = scenario.ResolvedSampled;
        if (n < 2)
        {
            Fail($"'secureAggregation' needs at least 2 agents per round (got {n}).");
        }

        // With buckets, each bucket (B to 2B − 1 agents) is its own SecAgg+ round.
        var largest = BucketSize > 0 && n >= 2 * BucketSize ? (2 * BucketSize) - 1 : n;
        var smallest = BucketSize > 0 && n >= 2 * BucketSize ? BucketSize : n;
        for (var size = smallest; size <= largest; size++)
        {
            var degree = ToSettings().ResolveDegree(size);
            if (degree != size - 1 && degree % 2 != 0)
            {
                Fail($"'secureAggregation.degree' must be even (a Harary graph) or at least the agents per {(smallest < n ? "bucket" : "round")} − 1 = {size - 1} (the complete graph) (got {Degree}).");
            }
        }

        if (Noise.Multiplier > 0)
        {
            // d = 1 here (the fit only gets harder with d): the coordinator repeats the check with the model's d when it starts.
            try
            {
                _ = ToSettings().ToOptions(largest).NoiseEncoding(largest, 1);
            }
            catch (ArgumentException e)
            {
                Fail($"'secureAggregation.noise' cannot fit the ring: {e.Message}");
            }
        }

        if (RingBits is >= 2 and <= 32 && ((1UL << RingBits) - 1) / (ulong)n < 1)
        {
            Fail($"'secureAggregation.ringBits' {RingBits} cannot hold the sum of {n} agents without wrapping.");
        }

        const string Refused = "cannot be combined with 'secureAggregation'";
        if (scenario.Compression.Uplink.Trim() != CompressionSettings.None)
        {
            Fail($"'compression.uplink' '{scenario.Compression.Uplink}' {Refused}: the coordinator never sees one agent's payload to decode it (lower 'secureAggregation.ringBits' to shrink the upload).");
        }

        if (scenario.Privacy is not null)
        {
            Fail($"'privacy' {Refused}: DP-FedAvg clips and noises individual updates on the coordinator, which secure aggregation hides; set 'secureAggregation.noise' (multiplier, l2Clip) for distributed Skellam noise instead.");
        }

        if (scenario.Continual is { ConsolidateFisher: true })
        {
            Fail($"'continual.consolidateFisher' {Refused}: each agent's Fisher diagonal would travel in the clear.");
        }

        if (scenario.Strategy.Name.Trim().ToLowerInvariant() is "scaffold" or "fednova")
        {
            Fail($"'strategy.name' '{scenario.Strategy.Name}' {Refused}: it needs each agent's own control variate or step count beside its update.");
        }

        if (scenario.Strategy.Options.Keys.FirstOrDefault(k => k is "max_norm_ratio" or "min_norm_ratio" or "max_norm" || (k == "aggregator" && scenario.Strategy.Options[k].Trim() != "mean")) is { } option)
        {
            Fail($"'strategy.options.{option}' {Refused}: robust rules and update validation need the individual updates, which secure aggregation hides; set 'secureAggregation.bucketSize' and 'secureAggregation.bucketAggregator' for a robust rule across bucket sums.");
        }

        if (scenario.Mode == "virtual")
        {
            Fail($"'mode' virtual {Refused}: every sampled agent must stay alive through the four stages of its round.");
        }

        var seen = new HashSet<int>();
        for (var i = 0; i < Faults.Count; i++)
        {
            var fault = Faults[i];
            if (fault is null || fault.Stage is not ("keys" or "shares" or "input" or "unmask" or "bad-signature"))
            {
                Fail($"'secureAggregation.faults[{i}].stage' must be keys, shares, input, unmask or bad-signature (got '{fault?.Stage}').");
            }

            if (fault!.Round < 0 || fault.Round > scenario.Rounds)
            {
                Fail($"'secureAggregation.faults[{i}].round' must be 0 (every round) or a round of the scenario (got {fault.Round}).");
            }

            if (fault.Agents is null || fault.Agents.Count == 0 || fault.Agents.Any(a => a < 0 || a >= scenario.Clients))
            {
                Fail($"'secureAggregation.faults[{i}].agents' must list agent indices between 0 and {scenario.Clients - 1}.");
            }

            if (fault.Agents!.FirstOrDefault(a => !seen.Add(a), -1) is var twice and >= 0)
            {
                Fail($"'secureAggregation.faults[{i}].agents': agent {twice} already has a fault.");
            }
        }
    }
}

/// <summary>A simulated secure-aggregation fault of some agents.</summary>
public sealed class SecureAggregationFault
{
    /// <summary>keys, shares, input or unmask (silent from that stage on: input = a dropout after sharing keys), or bad-signature.</summary>
    public string Stage { get; set; } = "input";

    /// <summary>The agents' indices (agent-0000 is 0).</summary>
    public List<int> Agents { get; set; } = [];

    /// <summary>The round the fault happens in (0: every round).</summary>
    public int Round { get; set; }
}

/// <summary>Distributed Skellam noise under secure aggregation in a scenario (<c>Coordinator:SecureAggregation:Noise</c>).</summary>
public sealed class SecureAggregationNoise
{
    /// <summary>z: noise over the L2 sensitivity of the summed update (0: no noise).</summary>
    public double Multiplier { get; set; }

    /// <summary>Instead of the multiplier: the ε the run may spend (the coordinator calibrates z when it starts; 0: off).</summary>
    public double TargetEpsilon { get; set; }

    /// <summary>C: the L2 norm each agent clips its delta to.</summary>
    public double L2Clip { get; set; }

    /// <summary>δ of the reported (ε, δ).</summary>
    public double Delta { get; set; } = 1e-5;
}
