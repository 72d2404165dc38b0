namespace Federated.Learning.Robustness;

/// <summary>Order statistics of per-update scalars (norms).</summary>
internal static class Selection
{
    /// <summary>The median of doubles (a copy is sorted); for norms and other per-update scalars.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new ArgumentException("The median of no values is undefined.", nameof(values));
        }

        var n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
    }
}
