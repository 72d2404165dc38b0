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
        foreach (var error in ToSettings().ValidateValues(name => $"'secureAggregation.{JsonNamingPolicy.CamelCase.ConvertName(name)}'"))
        {
            Fail(error);
        }

        var n = scenario.ResolvedSampled;
        if (n < 2)
        {
            Fail($"'secureAggregation' needs at least 2 agents per round (got {n}).");
        }

        var degree = ToSettings().ResolveDegree(n);
        if (degree != n - 1 && degree % 2 != 0)
        {
            Fail($"'secureAggregation.degree' must be even (a Harary graph) or at least the agents per round − 1 = {n - 1} (the complete graph) (got {Degree}).");
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
            Fail($"'privacy' {Refused}: DP-FedAvg clips and noises individual updates on the coordinator; distributed discrete noise is not implemented.");
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
            Fail($"'strategy.options.{option}' {Refused}: robust rules and update validation need the individual updates, which secure aggregation hides.");
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
