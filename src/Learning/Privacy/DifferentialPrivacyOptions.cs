namespace Federated.Learning.Privacy;

/// <summary>Settings of a <see cref="DifferentialPrivacyStrategy"/> (client-level DP-FedAvg).</summary>
public sealed record DifferentialPrivacyOptions
{
    /// <summary>
    /// z &gt; 0, the total noise multiplier the accountant is charged per round. Without adaptive clipping the noise
    /// on the update sum has standard deviation z·C; with it, z_Δ·C (<see cref="AdaptiveClipping.UpdateNoiseMultiplier(double)"/>).
    /// </summary>
    public required double NoiseMultiplier { get; init; }

    /// <summary>C &gt; 0, the L2 clipping bound (the initial bound with adaptive clipping).</summary>
    public required double ClipBound { get; init; }

    /// <summary>
    /// q ∈ (0, 1], the Poisson sampling rate the scheduler uses: each enrolled client joins a round independently with
    /// probability q. The accountant assumes exactly this; the expected number of participants is q × enrolled.
    /// </summary>
    public required double SampleRate { get; init; }

    /// <summary>
    /// False (the default): the coordinator clips every update it receives. True: agents clip before upload (told the
    /// bound through <see cref="AgentClipping.BoundKey"/>) and report <see cref="AgentClipping.ClippedMetric"/>; the
    /// coordinator rejects an update whose norm exceeds the bound by more than 1e-5 relative and rescales the rest
    /// onto the bound, so the sensitivity is C either way.
    /// </summary>
    public bool ClipOnAgents { get; init; }

    /// <summary>Adaptive clipping (Andrew et al. 2021); null for a fixed bound.</summary>
    public AdaptiveClipping? Adaptive { get; init; }

    /// <summary>δ at which ε is reported and the budget is checked.</summary>
    public double Delta { get; init; } = 1e-5;

    /// <summary>ε_max: when set, a round that would take ε(δ) above it is refused.</summary>
    public double? EpsilonBudget { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (!(NoiseMultiplier > 0) || !double.IsFinite(NoiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(NoiseMultiplier), NoiseMultiplier, "The noise multiplier z must be positive and finite.");
        }

        L2Clipping.CheckBound(ClipBound);
        if (!(SampleRate is > 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(SampleRate), SampleRate, "The Poisson sampling rate q must be in (0, 1].");
        }

        if (!(Delta is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(Delta), Delta, "δ must be in (0, 1).");
        }

        if (EpsilonBudget is { } budget && (!(budget > 0) || !double.IsFinite(budget)))
        {
            throw new ArgumentOutOfRangeException(nameof(EpsilonBudget), budget, "The ε budget must be positive and finite.");
        }

        if (Adaptive is not null)
        {
            Adaptive.Validate();
            _ = Adaptive.UpdateNoiseMultiplier(NoiseMultiplier);
        }
    }

    /// <summary>z_Δ, the multiplier of the noise on the update sum.</summary>
    public double UpdateNoiseMultiplier => Adaptive?.UpdateNoiseMultiplier(NoiseMultiplier) ?? NoiseMultiplier;
}
