using System.Globalization;
using Federated.Coordinator.Hosting;
using Federated.Learning.Privacy;
using Federated.Learning.Strategies;

namespace Federated.Coordinator.Privacy;

/// <summary>
/// The coordinator's half of client-level differential privacy: turns <see cref="PrivacySettings"/> into the options
/// of a <see cref="DifferentialPrivacyStrategy"/> (calibrating z for a target ε with the accountant), wraps the
/// configured strategy around a restored ledger, and draws each round's Poisson sample.
/// <para>
/// The Poisson sample comes from its own ChaCha20 key: OS entropy when <see cref="PrivacySettings.Seed"/> is empty,
/// so that nobody outside the coordinator can predict who was sampled (amplification by sampling assumes a secret
/// sample), and SHA-256 of the seed otherwise, so that a simulation is reproducible. Round r reads stream r.
/// </para>
/// </summary>
internal sealed class CoordinatorPrivacy
{
    private const string SamplingKeyPrefix = "poisson-sampling:";

    private readonly ChaCha20Random _noise;
    private readonly ChaCha20Random _sampling;

    private CoordinatorPrivacy(DifferentialPrivacyOptions options, string seed)
    {
        Options = options;
        Seeded = seed.Length > 0;
        _noise = Seeded ? ChaCha20Random.FromSeed(seed) : ChaCha20Random.FromEntropy();
        _sampling = Seeded ? ChaCha20Random.FromSeed(SamplingKeyPrefix + seed) : ChaCha20Random.FromEntropy();
    }

    /// <summary>The settings of the DP strategy (z calibrated when a target ε was configured).</summary>
    public DifferentialPrivacyOptions Options { get; }

    /// <summary>True when noise and sample come from a configured seed (reproducible, and known to whoever knows the seed).</summary>
    public bool Seeded { get; }

    /// <summary>The coordinator's privacy wiring, or null when <c>Coordinator:Privacy:Enabled</c> is false.</summary>
    public static CoordinatorPrivacy? Create(CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Privacy.Enabled ? new CoordinatorPrivacy(ToOptions(options.Privacy, options.Rounds), options.Privacy.Seed) : null;
    }

    /// <summary>
    /// The DP strategy's options for <paramref name="settings"/>; with a target ε, z is the smallest multiplier that keeps
    /// <paramref name="rounds"/> rounds at rate q within (ε, δ). Throws <see cref="ArgumentException"/> for invalid settings.
    /// </summary>
    public static DifferentialPrivacyOptions ToOptions(PrivacySettings settings, int rounds)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var z = settings.TargetEpsilon > 0
            ? RdpAccountant.CalibrateNoise(settings.TargetEpsilon, settings.SampleRate, rounds, settings.Delta)
            : settings.NoiseMultiplier;
        var adaptive = settings.Adaptive.Enabled
            ? new AdaptiveClipping
            {
                TargetQuantile = settings.Adaptive.TargetQuantile,
                LearningRate = settings.Adaptive.LearningRate,
                CountNoiseStddev = settings.Adaptive.CountNoiseStddev,
            }
            : null;
        var options = new DifferentialPrivacyOptions
        {
            NoiseMultiplier = z,
            ClipBound = settings.ClipBound,
            SampleRate = settings.SampleRate,
            ClipOnAgents = settings.ClipOnAgents,
            Adaptive = adaptive,
            Delta = settings.Delta,
            EpsilonBudget = settings.EpsilonBudget > 0 ? settings.EpsilonBudget : null,
        };
        options.Validate();
        return options;
    }

    /// <summary>
    /// Wraps <paramref name="inner"/>; <paramref name="ledgerJson"/> is the ledger saved with the checkpoint the run resumes
    /// from (null for a fresh run). Throws <see cref="InvalidDataException"/> for a ledger that does not parse.
    /// </summary>
    public DifferentialPrivacyStrategy Wrap(IStrategy inner, string? ledgerJson)
    {
        PrivacyLedger? ledger = null;
        if (ledgerJson is not null)
        {
            try
            {
                ledger = PrivacyLedger.FromJson(ledgerJson);
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"The checkpoint's privacy ledger is unreadable: {e.Message}", e);
            }
        }

        return new DifferentialPrivacyStrategy(inner, Options, _noise, ledger);
    }

    /// <summary>Round <paramref name="round"/>'s Poisson sample of <paramref name="population"/> (each member independently with probability q).</summary>
    public IReadOnlyList<string> Sample(IEnumerable<string> population, int round) =>
        PoissonSample(population, Options.SampleRate, _sampling.WithStream((ulong)(uint)round));

    /// <summary>
    /// Poisson sampling: each id of <paramref name="population"/> is kept independently with probability
    /// <paramref name="sampleRate"/>, reading one 53-bit uniform per id from <paramref name="random"/> in ordinal id order
    /// (so the sample does not depend on the order the ids come in). The sample's size is Binomial(N, q), possibly 0.
    /// </summary>
    public static List<string> PoissonSample(IEnumerable<string> population, double sampleRate, ChaCha20Random random)
    {
        ArgumentNullException.ThrowIfNull(population);
        ArgumentNullException.ThrowIfNull(random);
        if (!(sampleRate is > 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(sampleRate), sampleRate, "The Poisson sampling rate q must be in (0, 1].");
        }

        var sample = new List<string>();
        foreach (var id in population.Order(StringComparer.Ordinal))
        {
            if (random.NextDouble() < sampleRate)
            {
                sample.Add(id);
            }
        }

        return sample;
    }

    /// <summary>Adds to <paramref name="errors"/> what is wrong with <paramref name="options"/>' privacy settings (nothing when privacy is off).</summary>
    public static void Validate(CoordinatorOptions options, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(errors);
        var p = options.Privacy;
        if (!p.Enabled)
        {
            return;
        }

        var before = errors.Count;
        const string Section = "Coordinator:Privacy";
        void Require(bool ok, string message)
        {
            if (!ok)
            {
                errors.Add(message);
            }
        }

        Require(p.NoiseMultiplier >= 0 && double.IsFinite(p.NoiseMultiplier), $"{Section}:NoiseMultiplier must be a positive number (0 = calibrate from TargetEpsilon), not {Inv(p.NoiseMultiplier)}.");
        Require(p.TargetEpsilon >= 0 && double.IsFinite(p.TargetEpsilon), $"{Section}:TargetEpsilon must be a positive number (0 = use NoiseMultiplier), not {Inv(p.TargetEpsilon)}.");
        Require((p.NoiseMultiplier > 0) ^ (p.TargetEpsilon > 0), $"{Section}: set exactly one of NoiseMultiplier (z) and TargetEpsilon (ε after Coordinator:Rounds rounds); got z = {Inv(p.NoiseMultiplier)}, ε = {Inv(p.TargetEpsilon)}.");
        Require(p.Delta is > 0 and < 1, $"{Section}:Delta (δ) must be in (0, 1), not {Inv(p.Delta)}; use less than 1 / the number of clients, e.g. 1e-5.");
        Require(p.SampleRate is > 0 and <= 1, $"{Section}:SampleRate (the Poisson rate q) must be in (0, 1], not {Inv(p.SampleRate)}.");
        Require(p.ClipBound > 0 && double.IsFinite(p.ClipBound), $"{Section}:ClipBound must be positive and finite, not {Inv(p.ClipBound)}.");
        Require(p.EpsilonBudget >= 0 && double.IsFinite(p.EpsilonBudget), $"{Section}:EpsilonBudget must be positive (0 = no budget), not {Inv(p.EpsilonBudget)}.");
        if (p.Adaptive.Enabled)
        {
            Require(p.Adaptive.TargetQuantile is > 0 and < 1, $"{Section}:Adaptive:TargetQuantile (γ) must be in (0, 1), not {Inv(p.Adaptive.TargetQuantile)}.");
            Require(p.Adaptive.LearningRate > 0 && double.IsFinite(p.Adaptive.LearningRate), $"{Section}:Adaptive:LearningRate (η_C) must be positive, not {Inv(p.Adaptive.LearningRate)}.");
            Require(p.Adaptive.CountNoiseStddev > 0 && double.IsFinite(p.Adaptive.CountNoiseStddev), $"{Section}:Adaptive:CountNoiseStddev (σ_b) must be positive (the paper suggests expected participants / 20), not {Inv(p.Adaptive.CountNoiseStddev)}.");
        }

        Require(options.OverSelect == 0, $"Coordinator:OverSelect must be 0 with {Section}:Enabled: the accountant assumes Poisson sampling, without over-selection (got {options.OverSelect}).");
        Require(options.FractionFit == 1, $"Coordinator:FractionFit must stay 1 with {Section}:Enabled: agents are Poisson-sampled at {Section}:SampleRate, not by a fixed fraction (got {Inv(options.FractionFit)}).");
        if (errors.Count > before)
        {
            return;
        }

        DifferentialPrivacyOptions dp;
        try
        {
            dp = ToOptions(p, options.Rounds);
        }
        catch (ArgumentException e)
        {
            errors.Add($"{Section}: {e.Message}");
            return;
        }

        var oneRound = RdpAccountant.Epsilon(dp.SampleRate, dp.NoiseMultiplier, 1, dp.Delta).Epsilon;
        if (dp.EpsilonBudget is { } budget && oneRound > budget)
        {
            errors.Add($"{Section}:EpsilonBudget ({Inv(budget)}) is below the ε of a single round ({Inv(oneRound)} with q = {Inv(dp.SampleRate)}, z = {Inv(dp.NoiseMultiplier)}, δ = {Inv(dp.Delta)}): no round could run.");
            return;
        }

        try
        {
            // A dry round on a throwaway strategy: refuses strategies that need more than one aggregated update (SCAFFOLD).
            var probe = new DifferentialPrivacyStrategy(StrategyFactory.Create(options.Strategy, options.StrategyOptions), dp, ChaCha20Random.FromSeed("probe"));
            probe.BeginRound(1, new float[4], 1, 1_000);
        }
        catch (NotSupportedException e)
        {
            errors.Add($"{Section} cannot wrap Coordinator:Strategy '{options.Strategy}': {e.Message}");
        }
        catch (ArgumentException)
        {
            // An invalid strategy is reported by the strategy check.
        }
    }

    private static string Inv(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}
