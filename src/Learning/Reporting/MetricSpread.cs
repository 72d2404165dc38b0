namespace Federated.Learning.Reporting;

/// <summary>
/// The spread of one metric over the agents of a round (e.g. their local test accuracies): how many reported it, the
/// mean, the population standard deviation (divided by n), the minimum, the 10th percentile, the median and the
/// maximum. Percentiles interpolate linearly between order statistics at rank (n − 1)·p (NumPy's default).
/// </summary>
/// <param name="Count">Values (non-finite values are left out).</param>
/// <param name="Mean">Mean.</param>
/// <param name="Std">Population standard deviation.</param>
/// <param name="Min">Minimum.</param>
/// <param name="P10">10th percentile.</param>
/// <param name="Median">Median (50th percentile).</param>
/// <param name="Max">Maximum.</param>
public sealed record MetricSpread(int Count, double Mean, double Std, double Min, double P10, double Median, double Max)
{
    /// <summary>The column suffixes of <see cref="Columns"/>, in order.</summary>
    public static IReadOnlyList<string> Suffixes { get; } = ["n", "mean", "std", "min", "p10", "median", "max"];

    /// <summary>The spread of the finite values in <paramref name="values"/>; null when there are none.</summary>
    public static MetricSpread? Of(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sorted = values.Where(double.IsFinite).Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        var mean = sorted.Average();
        var variance = sorted.Sum(v => (v - mean) * (v - mean)) / sorted.Length;
        return new MetricSpread(sorted.Length, mean, Math.Sqrt(variance), sorted[0], Percentile(sorted, 0.1), Percentile(sorted, 0.5), sorted[^1]);
    }

    /// <summary>The <paramref name="p"/>-quantile (0 ≤ p ≤ 1) of ascending <paramref name="sorted"/>, linearly interpolated.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        ArgumentOutOfRangeException.ThrowIfZero(sorted.Count);
        if (p is < 0 or > 1 || double.IsNaN(p))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "The quantile must be in [0, 1].");
        }

        var rank = (sorted.Count - 1) * p;
        var low = (int)Math.Floor(rank);
        var high = Math.Min(low + 1, sorted.Count - 1);
        return sorted[low] + ((rank - low) * (sorted[high] - sorted[low]));
    }

    /// <summary>The figures as <c>{prefix}_n</c>, <c>{prefix}_mean</c>, … (<see cref="Suffixes"/>), in order.</summary>
    public IEnumerable<KeyValuePair<string, double>> Columns(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        double[] values = [Count, Mean, Std, Min, P10, Median, Max];
        return Suffixes.Select((suffix, i) => new KeyValuePair<string, double>($"{prefix}_{suffix}", values[i]));
    }
}
