using System.Globalization;
using System.Text.Json.Serialization;
using Federated.Client.Attacks;
using Federated.Client.Hosting;
using Federated.Learning.Data.Partitioning;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Byzantine agents: a fraction of the clients (chosen by the seed) runs the real agent with its malicious stage
/// (<c>Client:Attack</c>, see <see cref="AttackStage"/>) from <see cref="StartRound"/> on. The keys that only some
/// kinds read are refused for the others: <c>scale</c> (signflip, scaling), <c>sigma</c> (noise), <c>z</c> (alie),
/// <c>epsilon</c> (ipm), <c>variant</c> and <c>estimateRuns</c> (alie, ipm).
/// </summary>
public sealed class AttackSection
{
    /// <summary>none, signflip, scaling, noise, labelflip, zero, alie or ipm.</summary>
    public string Kind { get; set; } = "none";

    /// <summary>Fraction of the clients that attack (rounded to a whole number of clients, at least one).</summary>
    public double Fraction { get; set; }

    /// <summary>The first round the attackers attack in.</summary>
    public int StartRound { get; set; } = 1;

    /// <summary>signflip sends −scale·Δ (default 1), scaling scale·Δ (default 10).</summary>
    public double? Scale { get; set; }

    /// <summary>noise: the standard deviation of the noise that replaces Δ (default 1).</summary>
    public double? Sigma { get; set; }

    /// <summary>alie: z (default from the clients sampled per round n and the attackers among them f, Baruch et al.).</summary>
    public double? Z { get; set; }

    /// <summary>ipm: ε (default 0.1).</summary>
    public double? Epsilon { get; set; }

    /// <summary>alie, ipm: omniscient (the round's honest updates; in-process and virtual modes) or estimated (default omniscient).</summary>
    public string? Variant { get; set; }

    /// <summary>alie, ipm, variant estimated: local runs on bootstrap resamples behind the estimate (default 3).</summary>
    public int? EstimateRuns { get; set; }

    /// <summary>True when some agents attack.</summary>
    [JsonIgnore]
    public bool IsActive => Kind != "none";

    /// <summary>The attackers' indices for <paramref name="clients"/> clients and <paramref name="seed"/> (empty when inactive).</summary>
    public IReadOnlySet<int> Choose(int clients, long seed)
    {
        if (!IsActive)
        {
            return new HashSet<int>();
        }

        var order = Enumerable.Range(0, clients).ToArray();
        new StableRandom(unchecked((ulong)seed ^ 0xA77A_C4E5UL)).Shuffle(order.AsSpan());
        return order.Take(Count(clients)).ToHashSet();
    }

    /// <summary>How many of <paramref name="clients"/> attack.</summary>
    public int Count(int clients) => IsActive ? Math.Max(1, (int)Math.Round(Fraction * clients)) : 0;

    /// <summary>The client options every attacker of <paramref name="scenario"/> gets.</summary>
    public ClientAttackOptions ToClientOptions(Scenario scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var defaults = new ClientAttackOptions();
        var sampled = scenario.ResolvedSampled;
        return new ClientAttackOptions
        {
            Kind = Kind,
            StartRound = StartRound,
            Scale = Scale,
            Sigma = Sigma ?? defaults.Sigma,
            Z = Z,
            Epsilon = Epsilon ?? defaults.Epsilon,
            Variant = Variant ?? defaults.Variant,
            EstimateRuns = EstimateRuns ?? defaults.EstimateRuns,
            Clients = sampled,
            Attackers = Math.Max(1, (int)Math.Round((double)Count(scenario.Clients) * sampled / scenario.Clients)),
            WaitSeconds = Math.Min(defaults.WaitSeconds, scenario.RoundDeadlineSeconds),
            Seed = scenario.Seed,
        };
    }

    /// <summary>Agent <paramref name="index"/>'s <c>Client:Attack</c> settings: none for an honest agent.</summary>
    public IEnumerable<KeyValuePair<string, string>> AgentSettings(Scenario scenario, int index)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        if (!Choose(scenario.Clients, scenario.Seed).Contains(index))
        {
            yield break;
        }

        var o = ToClientOptions(scenario);
        var ci = CultureInfo.InvariantCulture;
        yield return new("Client:Attack:Kind", o.Kind);
        yield return new("Client:Attack:StartRound", o.StartRound.ToString(ci));
        if (o.Scale is { } scale)
        {
            yield return new("Client:Attack:Scale", scale.ToString(ci));
        }

        if (o.Z is { } z)
        {
            yield return new("Client:Attack:Z", z.ToString(ci));
        }

        yield return new("Client:Attack:Sigma", o.Sigma.ToString(ci));
        yield return new("Client:Attack:Epsilon", o.Epsilon.ToString(ci));
        yield return new("Client:Attack:Variant", o.Variant);
        yield return new("Client:Attack:EstimateRuns", o.EstimateRuns.ToString(ci));
        yield return new("Client:Attack:Clients", o.Clients.ToString(ci));
        yield return new("Client:Attack:Attackers", o.Attackers.ToString(ci));
        yield return new("Client:Attack:WaitSeconds", o.WaitSeconds.ToString(ci));
        yield return new("Client:Attack:Seed", o.Seed.ToString(ci));
    }

    /// <summary>True when the agents need the in-process colluding channel (omniscient ALIE or IPM).</summary>
    [JsonIgnore]
    public bool NeedsColludingChannel => Kind is "alie" or "ipm" && (Variant ?? "omniscient") == "omniscient";

    /// <summary>Throws <see cref="ScenarioException"/> naming the first invalid <c>attack.*</c> key.</summary>
    internal void Validate(Scenario scenario, string source)
    {
        void Require(bool ok, string key, string rule, object? value)
        {
            if (!ok)
            {
                throw new ScenarioException(string.Create(CultureInfo.InvariantCulture, $"Scenario '{source}': 'attack.{key}' {rule} (got {(value is string s ? $"'{s}'" : value is null ? "nothing" : Convert.ToString(value, CultureInfo.InvariantCulture))})."));
            }
        }

        Require(ClientAttackOptions.Kinds.Contains(Kind), "kind", $"must be one of {string.Join(", ", ClientAttackOptions.Kinds)}", Kind);
        Require(Fraction is >= 0 and < 1, "fraction", "must be in [0, 1)", Fraction);
        if (!IsActive)
        {
            Require(Fraction == 0, "fraction", "must be 0 without an attack kind", Fraction);
            return;
        }

        Require(Fraction > 0, "fraction", "must be positive when attack.kind is set", Fraction);
        Require(Count(scenario.Clients) < scenario.Clients, "fraction", $"must leave at least one of the {scenario.Clients} clients honest", Fraction);
        Require(StartRound >= 1 && StartRound <= scenario.Rounds, "startRound", "must be between 1 and the scenario's rounds", StartRound);
        Require(Scale is null || Kind is "signflip" or "scaling", "scale", "applies only to signflip and scaling", Scale);
        Require(Scale is null || (Scale > 0 && double.IsFinite(Scale.Value)), "scale", "must be positive", Scale);
        Require(Sigma is null || Kind == "noise", "sigma", "applies only to noise", Sigma);
        Require(Sigma is null || (Sigma > 0 && double.IsFinite(Sigma.Value)), "sigma", "must be positive", Sigma);
        Require(Z is null || Kind == "alie", "z", "applies only to alie", Z);
        Require(Z is null || double.IsFinite(Z.Value), "z", "must be a finite number", Z);
        Require(Epsilon is null || Kind == "ipm", "epsilon", "applies only to ipm", Epsilon);
        Require(Epsilon is null || (Epsilon > 0 && double.IsFinite(Epsilon.Value)), "epsilon", "must be positive", Epsilon);
        Require(Variant is null || Kind is "alie" or "ipm", "variant", "applies only to alie and ipm", Variant);
        Require(Variant is null or "omniscient" or "estimated", "variant", "must be omniscient or estimated", Variant);
        Require(EstimateRuns is null || (Kind is "alie" or "ipm" && Variant == "estimated"), "estimateRuns", "applies only to alie and ipm with variant estimated", EstimateRuns);
        Require(EstimateRuns is null or (>= 2 and <= 100), "estimateRuns", "must be between 2 and 100", EstimateRuns);
        Require(!NeedsColludingChannel || scenario.Mode != "multi-process", "variant",
            "omniscient needs the in-process colluding channel; in multi-process mode use variant estimated", Variant ?? "omniscient");
        var errors = new ClientOptions { Attack = ToClientOptions(scenario) }.GetErrors();
        Require(errors.Count == 0, Kind == "alie" ? "z" : "kind", $"does not give a valid client attack: {string.Join(" ", errors)}", Kind == "alie" ? Z : Kind);
    }
}
