namespace Federated.Learning.Continual;

/// <summary>
/// The wire names and the math of federated Fisher consolidation: agents upload the Fisher diagonal of their latest
/// experience boundary as <see cref="FisherKey"/> (a flat vector in the model's layout, zeros for non-parameters);
/// the coordinator averages the diagonals weighted by the agents' examples and sends the mean as
/// <see cref="FisherKey"/> with the model it was estimated at as <see cref="AnchorKey"/>; agents whose task carries
/// both use that one consolidated EWC term in place of their own.
/// </summary>
public static class FisherConsolidation
{
    /// <summary>The task configuration key that asks agents to upload their Fisher diagonal (<c>true</c>).</summary>
    public const string ConfigKey = "continual.consolidate";

    /// <summary>The Fisher diagonal, uploaded by agents and sent back consolidated.</summary>
    public const string FisherKey = "continual.fisher";

    /// <summary>The consolidated anchor sent with the consolidated Fisher diagonal.</summary>
    public const string AnchorKey = "continual.anchor";

    /// <summary>Σ nᵢ Fᵢ / Σ nᵢ over the agents' diagonals; throws when empty, mismatched or without examples.</summary>
    public static float[] WeightedMean(IReadOnlyList<(float[] Fisher, long Examples)> diagonals)
    {
        ArgumentNullException.ThrowIfNull(diagonals);
        if (diagonals.Count == 0)
        {
            throw new ArgumentException("No Fisher diagonal to consolidate.", nameof(diagonals));
        }

        var length = diagonals[0].Fisher.Length;
        var sum = new double[length];
        double total = 0;
        foreach (var (fisher, examples) in diagonals)
        {
            if (fisher.Length != length)
            {
                throw new ArgumentException($"Fisher diagonals of {fisher.Length} and {length} values cannot be consolidated.", nameof(diagonals));
            }

            ArgumentOutOfRangeException.ThrowIfNegative(examples);
            for (var i = 0; i < length; i++)
            {
                sum[i] += examples * (double)fisher[i];
            }

            total += examples;
        }

        if (total <= 0)
        {
            throw new ArgumentException("The Fisher diagonals carry no examples.", nameof(diagonals));
        }

        var mean = new float[length];
        for (var i = 0; i < length; i++)
        {
            mean[i] = (float)(sum[i] / total);
        }

        return mean;
    }
}
