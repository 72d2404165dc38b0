using System.Globalization;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Privacy;
using Federated.Learning.Privacy;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Client-level differential privacy in a scenario (the coordinator's <c>Coordinator:Privacy</c> section): Poisson
/// sampling at <see cref="SampleRate"/> replaces <c>sampledPerRound</c>, updates are clipped to <see cref="Clip"/> and
/// noised with multiplier <see cref="NoiseMultiplier"/> (or the z that reaches <see cref="TargetEpsilon"/> after the
/// scenario's rounds). The noise and the sample are keyed from the scenario's seed, so a run is reproducible (and,
/// being seeded, private in name only).
/// </summary>
public sealed class PrivacySection
{
    /// <summary>q ∈ (0, 1]: each client joins a round independently with this probability.</summary>
    public double SampleRate { get; set; }

    /// <summary>z, the noise multiplier per round (0 = calibrate from <see cref="TargetEpsilon"/>).</summary>
    public double NoiseMultiplier { get; set; }

    /// <summary>ε to reach after the scenario's rounds at <see cref="Delta"/> (0 = use <see cref="NoiseMultiplier"/>).</summary>
    public double TargetEpsilon { get; set; }

    /// <summary>δ.</summary>
    public double Delta { get; set; } = 1e-5;

    /// <summary>C, the L2 clipping bound (the initial bound with adaptive clipping).</summary>
    public double Clip { get; set; } = 1.0;

    /// <summary>Agents clip their updates before upload (the coordinator checks and rescales).</summary>
    public bool ClipOnAgents { get; set; }

    /// <summary>ε budget at <see cref="Delta"/>: the run stops before a round that would exceed it (0 = none).</summary>
    public double Budget { get; set; }

    /// <summary>Adaptive clipping; null for a fixed bound.</summary>
    public AdaptiveSection? Adaptive { get; set; }

    /// <summary>The coordinator's settings for this section in scenario <paramref name="scenario"/>.</summary>
    public PrivacySettings ToSettings(Scenario scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        return new PrivacySettings
        {
            Enabled = true,
            SampleRate = SampleRate,
            NoiseMultiplier = NoiseMultiplier,
            TargetEpsilon = TargetEpsilon,
            Delta = Delta,
            ClipBound = Clip,
            ClipOnAgents = ClipOnAgents,
            EpsilonBudget = Budget,
            Seed = Seed(scenario),
            Adaptive = Adaptive is { } a
                ? new AdaptiveClippingSettings { Enabled = true, TargetQuantile = a.TargetQuantile, LearningRate = a.LearningRate, CountNoiseStddev = a.CountNoiseStddev }
                : new AdaptiveClippingSettings(),
        };
    }

    /// <summary>The coordinator's configuration keys for this section.</summary>
    public IEnumerable<KeyValuePair<string, string>> CoordinatorKeys(Scenario scenario)
    {
        var p = ToSettings(scenario);
        static string Inv(double value) => value.ToString("R", CultureInfo.InvariantCulture);
        const string S = "Coordinator:Privacy:";
        yield return new(S + "Enabled", "true");
        yield return new(S + "SampleRate", Inv(p.SampleRate));
        yield return new(S + "NoiseMultiplier", Inv(p.NoiseMultiplier));
        yield return new(S + "TargetEpsilon", Inv(p.TargetEpsilon));
        yield return new(S + "Delta", Inv(p.Delta));
        yield return new(S + "ClipBound", Inv(p.ClipBound));
        yield return new(S + "ClipOnAgents", p.ClipOnAgents ? "true" : "false");
        yield return new(S + "EpsilonBudget", Inv(p.EpsilonBudget));
        yield return new(S + "Seed", p.Seed);
        yield return new(S + "Adaptive:Enabled", p.Adaptive.Enabled ? "true" : "false");
        yield return new(S + "Adaptive:TargetQuantile", Inv(p.Adaptive.TargetQuantile));
        yield return new(S + "Adaptive:LearningRate", Inv(p.Adaptive.LearningRate));
        yield return new(S + "Adaptive:CountNoiseStddev", Inv(p.Adaptive.CountNoiseStddev));
    }

    /// <summary>Throws <see cref="ScenarioException"/> naming the first invalid key (<paramref name="source"/> names the file).</summary>
    public void Validate(Scenario scenario, string source)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        void Require(bool ok, string key, string rule, object? value)
        {
            if (!ok)
            {
                throw new ScenarioException(string.Create(CultureInfo.InvariantCulture, $"Scenario '{source}': '{key}' {rule} (got {value ?? "nothing"})."));
            }
        }

        Require(SampleRate is > 0 and <= 1, "privacy.sampleRate", "must be in (0, 1]", SampleRate);
        Require(NoiseMultiplier >= 0 && double.IsFinite(NoiseMultiplier), "privacy.noiseMultiplier", "must be positive (0 = calibrate from privacy.targetEpsilon)", NoiseMultiplier);
        Require(TargetEpsilon >= 0 && double.IsFinite(TargetEpsilon), "privacy.targetEpsilon", "must be positive (0 = use privacy.noiseMultiplier)", TargetEpsilon);
        Require((NoiseMultiplier > 0) ^ (TargetEpsilon > 0), "privacy.noiseMultiplier/targetEpsilon", "must have exactly one set", $"{NoiseMultiplier}/{TargetEpsilon}");
        Require(Delta is > 0 and < 1, "privacy.delta", "must be in (0, 1)", Delta);
        Require(Clip > 0 && double.IsFinite(Clip), "privacy.clip", "must be positive", Clip);
        Require(Budget >= 0 && double.IsFinite(Budget), "privacy.budget", "must be positive (0 = none)", Budget);
        if (Adaptive is { } a)
        {
            Require(a.TargetQuantile is > 0 and < 1, "privacy.adaptive.targetQuantile", "must be in (0, 1)", a.TargetQuantile);
            Require(a.LearningRate > 0 && double.IsFinite(a.LearningRate), "privacy.adaptive.learningRate", "must be positive", a.LearningRate);
            Require(a.CountNoiseStddev > 0 && double.IsFinite(a.CountNoiseStddev), "privacy.adaptive.countNoiseStddev", "must be positive (the paper suggests expected participants / 20)", a.CountNoiseStddev);
        }

        Require(scenario.SampledPerRound == 0, "sampledPerRound", "must be 0 with privacy: clients are Poisson-sampled at privacy.sampleRate", scenario.SampledPerRound);
        Require(scenario.MinResults == 0, "minResults", "must be 0 with privacy: every round releases its noised mean whatever the number of results", scenario.MinResults);

        // The coordinator's own rules (calibration, z < 2σ_b, a budget that covers one round, a strategy DP can wrap).
        var errors = new List<string>();
        CoordinatorPrivacy.Validate(new CoordinatorOptions { Rounds = scenario.Rounds, Strategy = scenario.Strategy.Name, StrategyOptions = scenario.Strategy.Options, Privacy = ToSettings(scenario) }, errors);
        if (errors.Count > 0)
        {
            throw new ScenarioException($"Scenario '{source}': 'privacy' is invalid: {string.Join(" ", errors)}");
        }
    }

    /// <summary>
    /// True when the run stopped early because one more round would have exceeded the budget: the rounds that
    /// released a model (ε grew) are replayed through the accountant with the scenario's q and z.
    /// </summary>
    public bool StoppedByBudget(Scenario scenario, IReadOnlyList<RoundRecord> rounds)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(rounds);
        if (!(Budget > 0) || rounds.Count >= scenario.Rounds)
        {
            return false;
        }

        var options = CoordinatorPrivacy.ToOptions(ToSettings(scenario), scenario.Rounds);
        var spent = rounds.Where(r => r.Epsilon is not null).Select(r => r.Epsilon!.Value).ToList();
        var charged = spent.Prepend(0).Zip(spent).Count(p => p.Second > p.First);
        var ledger = new PrivacyLedger([new PrivacyLedgerEntry(options.SampleRate, options.NoiseMultiplier, charged)]);
        return ledger.WouldExceed(Budget, Delta, options.SampleRate, options.NoiseMultiplier);
    }

    private static string Seed(Scenario scenario) => string.Create(CultureInfo.InvariantCulture, $"scenario:{scenario.Seed}");
}

/// <summary>Adaptive clipping in a scenario (Andrew et al. 2021).</summary>
public sealed class AdaptiveSection
{
    /// <summary>γ, the target fraction of unclipped updates.</summary>
    public double TargetQuantile { get; set; } = 0.5;

    /// <summary>η_C, the geometric learning rate of the bound.</summary>
    public double LearningRate { get; set; } = 0.2;

    /// <summary>σ_b, the noise on the unclipped count (required; expected participants / 20 in the paper).</summary>
    public double CountNoiseStddev { get; set; }
}
