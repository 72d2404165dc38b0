namespace Federated.Learning.Continual;

/// <summary>
/// R[i][j]: accuracy on experience j's test data after training on experiences 0 … i, and the summaries of
/// Lopez-Paz &amp; Ranzato (2017) and Chaudhry et al. (2018) over T experiences:
/// <list type="bullet">
/// <item>average accuracy A = (1/T) Σ_j R[T−1][j];</item>
/// <item>backward transfer BWT = 1/(T−1) Σ_{j&lt;T−1} (R[T−1][j] − R[j][j]) (negative: forgetting);</item>
/// <item>forgetting F = 1/(T−1) Σ_{j&lt;T−1} (max_{l&lt;T−1} R[l][j] − R[T−1][j]);</item>
/// <item>forward transfer FWT = 1/(T−1) Σ_{j≥1} (R[j−1][j] − b_j), where b_j is the accuracy on experience j of the
/// model at random initialisation (the same initial weights, before any training) — Lopez-Paz &amp; Ranzato's b̄.</item>
/// </list>
/// </summary>
public sealed class AccuracyMatrix
{
    private readonly double[,] _r;

    /// <summary>An empty (all NaN) matrix for <paramref name="experiences"/> experiences.</summary>
    public AccuracyMatrix(int experiences)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(experiences);
        Experiences = experiences;
        _r = new double[experiences, experiences];
        for (var i = 0; i < experiences; i++)
        {
            for (var j = 0; j < experiences; j++)
            {
                _r[i, j] = double.NaN;
            }
        }

        Baseline = Enumerable.Repeat(double.NaN, experiences).ToArray();
    }

    /// <summary>Builds a matrix from rows (and the random-initialisation baseline, for FWT).</summary>
    public static AccuracyMatrix FromRows(IReadOnlyList<IReadOnlyList<double>> rows, IReadOnlyList<double>? baseline = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var matrix = new AccuracyMatrix(rows.Count);
        for (var i = 0; i < rows.Count; i++)
        {
            if (rows[i].Count != rows.Count)
            {
                throw new ArgumentException($"Row {i} has {rows[i].Count} entries; the matrix is {rows.Count} × {rows.Count}.", nameof(rows));
            }

            for (var j = 0; j < rows.Count; j++)
            {
                matrix[i, j] = rows[i][j];
            }
        }

        if (baseline is not null)
        {
            if (baseline.Count != rows.Count)
            {
                throw new ArgumentException($"The baseline has {baseline.Count} entries for {rows.Count} experiences.", nameof(baseline));
            }

            for (var j = 0; j < baseline.Count; j++)
            {
                matrix.Baseline[j] = baseline[j];
            }
        }

        return matrix;
    }

    /// <summary>Number of experiences T.</summary>
    public int Experiences { get; }

    /// <summary>b_j: accuracy on experience j at random initialisation (NaN when unknown).</summary>
    public double[] Baseline { get; }

    /// <summary>R[i][j].</summary>
    public double this[int i, int j]
    {
        get => _r[i, j];
        set => _r[i, j] = value;
    }

    /// <summary>The matrix as rows.</summary>
    public double[][] Rows() => Enumerable.Range(0, Experiences).Select(i => Enumerable.Range(0, Experiences).Select(j => _r[i, j]).ToArray()).ToArray();

    /// <summary>Average accuracy over experiences 0 … <paramref name="after"/> after training on <paramref name="after"/> (default: the last).</summary>
    public double AverageAccuracy(int? after = null)
    {
        var i = after ?? Experiences - 1;
        ArgumentOutOfRangeException.ThrowIfNegative(i);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, Experiences);
        return Enumerable.Range(0, i + 1).Average(j => _r[i, j]);
    }

    /// <summary>Backward transfer (NaN for a single experience).</summary>
    public double BackwardTransfer()
    {
        var last = Experiences - 1;
        return last == 0 ? double.NaN : Enumerable.Range(0, last).Average(j => _r[last, j] - _r[j, j]);
    }

    /// <summary>Average forgetting: how far each earlier experience fell from its best (NaN for a single experience).</summary>
    public double Forgetting()
    {
        var last = Experiences - 1;
        return last == 0 ? double.NaN : Enumerable.Range(0, last).Average(j => Enumerable.Range(0, last).Max(l => _r[l, j]) - _r[last, j]);
    }

    /// <summary>Forward transfer against <see cref="Baseline"/> (NaN for a single experience or an unknown baseline).</summary>
    public double ForwardTransfer() =>
        Experiences == 1 ? double.NaN : Enumerable.Range(1, Experiences - 1).Average(j => _r[j - 1, j] - Baseline[j]);
}
