namespace Federated.Learning.Privacy;

/// <summary>
/// Adaptive clipping (Andrew, Thakkar, McMahan and Ramaswamy 2021, "Differentially private learning with adaptive
/// clipping"): the bound C tracks the γ-quantile of the update norms. Each round, every participant contributes
/// bᵢ = 1 when ‖Δᵢ‖ ≤ C (its update was not clipped); the coordinator releases the noised fraction
/// b̃ = (Σᵢ (bᵢ − ½) + N(0, σ_b²)) / m + ½, clamped to [0, 1], with m the expected number of participants, and moves
/// the bound geometrically: C ← C · exp(−η_C (b̃ − γ)). Centring bᵢ on ½ gives the count a sensitivity of ½, so
/// its noise multiplier is 2σ_b, and the two queries together cost as much as one with the total multiplier z when
/// the update's noise multiplier is z_Δ = (z⁻² − (2σ_b)⁻²)^−½ (<see cref="UpdateNoiseMultiplier(double)"/>).
/// The paper's defaults: γ = 0.5, η_C = 0.2, σ_b = m/20.
/// </summary>
public sealed record AdaptiveClipping
{
    /// <summary>γ ∈ (0, 1), the target fraction of updates left unclipped.</summary>
    public double TargetQuantile { get; init; } = 0.5;

    /// <summary>η_C &gt; 0, the geometric learning rate of the bound.</summary>
    public double LearningRate { get; init; } = 0.2;

    /// <summary>σ_b &gt; 0, the standard deviation of the noise on the unclipped count (the paper suggests m/20).</summary>
    public required double CountNoiseStddev { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (!(TargetQuantile is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(TargetQuantile), TargetQuantile, "The target quantile γ must be in (0, 1).");
        }

        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "The clip learning rate η_C must be positive and finite.");
        }

        if (!(CountNoiseStddev > 0) || !double.IsFinite(CountNoiseStddev))
        {
            throw new ArgumentOutOfRangeException(nameof(CountNoiseStddev), CountNoiseStddev, "The count noise σ_b must be positive and finite.");
        }
    }

    /// <summary>The update's noise multiplier z_Δ for a total multiplier <paramref name="noiseMultiplier"/> (see <see cref="UpdateNoiseMultiplier(double, double)"/>).</summary>
    public double UpdateNoiseMultiplier(double noiseMultiplier) => UpdateNoiseMultiplier(noiseMultiplier, CountNoiseStddev);

    /// <summary>
    /// z_Δ = (z⁻² − (2σ_b)⁻²)^−½: the noise multiplier left for the update sum once the count query (multiplier
    /// 2σ_b) has taken its share of a total multiplier z. Defined only when z &lt; 2σ_b; otherwise the count alone
    /// spends the whole budget and this throws.
    /// </summary>
    public static double UpdateNoiseMultiplier(double noiseMultiplier, double countNoiseStddev)
    {
        if (!(noiseMultiplier > 0) || !double.IsFinite(noiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "The total noise multiplier z must be positive and finite.");
        }

        var countMultiplier = 2 * countNoiseStddev;
        var remaining = (1 / (noiseMultiplier * noiseMultiplier)) - (1 / (countMultiplier * countMultiplier));
        if (!(remaining > 0))
        {
            throw new ArgumentOutOfRangeException(
                nameof(noiseMultiplier),
                noiseMultiplier,
                $"Adaptive clipping with count noise σ_b = {countNoiseStddev} cannot reach a total noise multiplier z = {noiseMultiplier}: z_Δ = (z⁻² − (2σ_b)⁻²)^−½ needs z < 2σ_b = {countMultiplier}. Raise σ_b (the paper suggests expected participants / 20) or lower z.");
        }

        return 1 / Math.Sqrt(remaining);
    }

    /// <summary>
    /// b̃ = clamp((<paramref name="unclipped"/> − <paramref name="participants"/>/2 + <paramref name="countNoise"/>) / m + ½, 0, 1),
    /// with <paramref name="countNoise"/> a draw of N(0, σ_b²) and m = <paramref name="expectedParticipants"/>.
    /// </summary>
    public static double NoisedUnclippedFraction(int unclipped, int participants, double expectedParticipants, double countNoise)
    {
        if (unclipped < 0 || unclipped > participants)
        {
            throw new ArgumentOutOfRangeException(nameof(unclipped), unclipped, $"The unclipped count must be in [0, {participants}].");
        }

        if (!(expectedParticipants > 0) || !double.IsFinite(expectedParticipants))
        {
            throw new ArgumentOutOfRangeException(nameof(expectedParticipants), expectedParticipants, "The expected number of participants must be positive.");
        }

        var fraction = ((unclipped - (0.5 * participants) + countNoise) / expectedParticipants) + 0.5;
        return Math.Clamp(fraction, 0, 1);
    }

    /// <summary><see cref="NoisedUnclippedFraction(int, int, double, double)"/> with the count noise drawn from <paramref name="noise"/>.</summary>
    public double NoisedUnclippedFraction(int unclipped, int participants, double expectedParticipants, ChaCha20Random noise)
    {
        ArgumentNullException.ThrowIfNull(noise);
        return NoisedUnclippedFraction(unclipped, participants, expectedParticipants, CountNoiseStddev * noise.NextGaussian());
    }

    /// <summary>C' = C · exp(−η_C (b̃ − γ)): the bound shrinks when more than γ of the updates fit under it, and grows otherwise.</summary>
    public double NextBound(double bound, double noisedUnclippedFraction)
    {
        L2Clipping.CheckBound(bound);
        return bound * Math.Exp(-LearningRate * (noisedUnclippedFraction - TargetQuantile));
    }
}
