using System.Numerics;
using System.Numerics.Tensors;

namespace Federated.Learning.Robustness;

/// <summary>
/// A reduction of sorted columns to one value each: every lane of the vectors is one coordinate, and lane-wise the
/// n vectors are the n updates' values in ascending order.
/// </summary>
internal interface IColumnReducer
{
    Vector<float> Reduce(ReadOnlySpan<Vector<float>> sorted);
}

/// <summary>
/// The kernels the robust rules share: input checks, weighted sums, distances accumulated in double, and the
/// column-blocked transpose that coordinate-wise rules run on. Work is split across cores with
/// <see cref="Parallel"/> over blocks of coordinates (or over updates, for per-update norms).
/// </summary>
internal static class RobustMath
{
    /// <summary>Coordinates per block of <see cref="WeightedSum"/>.</summary>
    private const int SumBlock = 16 * 1024;

    /// <summary>Floats in one worker's transpose scratch (256 KiB: stays in L2).</summary>
    private const int ColumnScratchFloats = 64 * 1024;

    /// <summary>Doubles converted at a time on the stack by <see cref="SumOfSquares"/>.</summary>
    private const int DoubleChunk = 512;

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless there is at least one update, all updates have one non-zero
    /// length with finite values, and there is one positive finite weight per update. Returns the length.
    /// </summary>
    public static int CheckInputs(string rule, IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights)
    {
        ArgumentNullException.ThrowIfNull(updates);
        ArgumentNullException.ThrowIfNull(weights);
        if (updates.Count == 0)
        {
            throw new ArgumentException($"{rule}: there are no updates to aggregate.", nameof(updates));
        }

        if (weights.Count != updates.Count)
        {
            throw new ArgumentException($"{rule}: {updates.Count} updates but {weights.Count} weights.", nameof(weights));
        }

        var length = updates[0].Length;
        if (length == 0)
        {
            throw new ArgumentException($"{rule}: the updates are empty.", nameof(updates));
        }

        for (var i = 0; i < updates.Count; i++)
        {
            if (updates[i].Length != length)
            {
                throw new ArgumentException($"{rule}: update {i} has {updates[i].Length} values; update 0 has {length}.", nameof(updates));
            }

            if (!(weights[i] > 0) || !double.IsFinite(weights[i]))
            {
                throw new ArgumentException($"{rule}: weight {i} is {weights[i]}; weights must be positive and finite.", nameof(weights));
            }
        }

        var finite = new bool[updates.Count];
        Parallel.For(0, updates.Count, i => finite[i] = TensorPrimitives.IsFiniteAll(updates[i].Span));
        var bad = Array.IndexOf(finite, false);
        if (bad >= 0)
        {
            throw new ArgumentException($"{rule}: update {bad} has non-finite values (NaN or infinity); validate updates before aggregating.", nameof(updates));
        }

        return length;
    }

    /// <summary>The weights divided by their sum.</summary>
    public static double[] Normalise(IReadOnlyList<double> weights)
    {
        var total = weights.Sum();
        return weights.Select(w => w / total).ToArray();
    }

    /// <summary>Σᵢ coefficients[i] × updates[i], in float, parallel over blocks of coordinates; zero coefficients are skipped.</summary>
    public static float[] WeightedSum(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> coefficients, int length)
    {
        var result = new float[length];
        var blocks = (length + SumBlock - 1) / SumBlock;
        Parallel.For(0, blocks, b =>
        {
            var start = b * SumBlock;
            var count = Math.Min(SumBlock, length - start);
            var destination = result.AsSpan(start, count);
            for (var i = 0; i < updates.Count; i++)
            {
                if (coefficients[i] != 0)
                {
                    TensorPrimitives.MultiplyAdd(updates[i].Span.Slice(start, count), (float)coefficients[i], destination, destination);
                }
            }
        });
        return result;
    }

    /// <summary>The weighted mean Σ wᵢ xᵢ / Σ wᵢ.</summary>
    public static float[] WeightedMean(IReadOnlyList<ReadOnlyMemory<float>> updates, IReadOnlyList<double> weights, int length) =>
        WeightedSum(updates, Normalise(weights), length);

    /// <summary>‖a‖², every term in double (no float overflow for any finite input).</summary>
    public static double SquaredNorm(ReadOnlySpan<float> a) => SumOfSquares(a, []);

    /// <summary>‖xᵢ − center‖ for every update (‖xᵢ‖ when <paramref name="center"/> is empty), parallel over updates.</summary>
    public static double[] Distances(IReadOnlyList<ReadOnlyMemory<float>> updates, ReadOnlyMemory<float> center)
    {
        var result = new double[updates.Count];
        Parallel.For(0, updates.Count, i => result[i] = Math.Sqrt(SumOfSquares(updates[i].Span, center.Span)));
        return result;
    }

    /// <summary>
    /// Applies <paramref name="reducer"/> to every column (the n updates' values of one coordinate), sorted. Blocks
    /// of coordinates are transposed into a per-worker scratch of vectors (group g of <see cref="Vector{T}.Count"/>
    /// consecutive coordinates holds update i's values at <c>scratch[g·n + i]</c>), each group is sorted lane-wise
    /// by a <see cref="SortingNetwork"/> and reduced; blocks run in parallel.
    /// </summary>
    public static float[] ReduceSortedColumns<TReducer>(IReadOnlyList<ReadOnlyMemory<float>> updates, int length, TReducer reducer)
        where TReducer : struct, IColumnReducer
    {
        var n = updates.Count;
        var lanes = Vector<float>.Count;
        var network = SortingNetwork.For(n);
        var groupsPerBlock = Math.Max(1, ColumnScratchFloats / lanes / n);
        var blockLength = groupsPerBlock * lanes;
        var result = new float[length];
        var blocks = (length + blockLength - 1) / blockLength;
        Parallel.For(
            0,
            blocks,
            () => new Vector<float>[groupsPerBlock * n],
            (b, _, scratch) =>
            {
                var start = b * blockLength;
                var count = Math.Min(blockLength, length - start);
                var groups = (count + lanes - 1) / lanes;
                for (var i = 0; i < n; i++)
                {
                    var row = updates[i].Span.Slice(start, count);
                    for (var g = 0; g < groups; g++)
                    {
                        var offset = g * lanes;
                        scratch[(g * n) + i] = offset + lanes <= count ? new Vector<float>(row.Slice(offset, lanes)) : Padded(row[offset..]);
                    }
                }

                for (var g = 0; g < groups; g++)
                {
                    var column = scratch.AsSpan(g * n, n);
                    SortingNetwork.Sort(column, network);
                    var value = reducer.Reduce(column);
                    var offset = g * lanes;
                    Store(value, result.AsSpan(start + offset, Math.Min(lanes, count - offset)));
                }

                return scratch;
            },
            _ => { });
        return result;
    }

    /// <summary>Σ (aᵢ − bᵢ)² (Σ aᵢ² when <paramref name="b"/> is empty), converted to double chunk by chunk on the stack.</summary>
    private static double SumOfSquares(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Span<double> x = stackalloc double[DoubleChunk];
        Span<double> y = stackalloc double[DoubleChunk];
        double sum = 0;
        for (var start = 0; start < a.Length; start += DoubleChunk)
        {
            var count = Math.Min(DoubleChunk, a.Length - start);
            var dx = x[..count];
            TensorPrimitives.ConvertChecked(a.Slice(start, count), dx);
            if (!b.IsEmpty)
            {
                TensorPrimitives.ConvertChecked(b.Slice(start, count), y[..count]);
                TensorPrimitives.Subtract(dx, y[..count], dx);
            }

            sum += TensorPrimitives.Dot<double>(dx, dx);
        }

        return sum;
    }

    private static Vector<float> Padded(ReadOnlySpan<float> tail)
    {
        Span<float> lanes = stackalloc float[Vector<float>.Count];
        lanes.Clear();
        tail.CopyTo(lanes);
        return new Vector<float>(lanes);
    }

    private static void Store(Vector<float> value, Span<float> destination)
    {
        if (destination.Length == Vector<float>.Count)
        {
            value.CopyTo(destination);
            return;
        }

        Span<float> lanes = stackalloc float[Vector<float>.Count];
        value.CopyTo(lanes);
        lanes[..destination.Length].CopyTo(destination);
    }
}
