using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Federated.Learning.Robustness;

/// <summary>
/// All pairwise squared Euclidean distances of n updates through their Gram matrix,
/// ‖xᵢ − xⱼ‖² = ‖xᵢ‖² + ‖xⱼ‖² − 2 xᵢ·xⱼ: one pass over the data computes every dot product, block by block of
/// coordinates (each block converted to double once, so no finite float32 input overflows and sums keep 53 bits),
/// blocks in parallel with one partial Gram matrix per worker. Cost O(n² d) arithmetic, O(n d) memory traffic.
/// </summary>
internal static class PairwiseDistances
{
    /// <summary>Coordinates per block: n rows of this many doubles stay in L2 for n up to a few hundred.</summary>
    private const int Block = 512;

    /// <summary>The symmetric n × n matrix of squared distances (zero diagonal), row-major.</summary>
    public static double[] Squared(IReadOnlyList<ReadOnlyMemory<float>> updates, int length)
    {
        var n = updates.Count;
        var gram = new double[n * n];
        var gate = new Lock();
        var blocks = (length + Block - 1) / Block;
        Parallel.For(
            0,
            blocks,
            () => (Rows: new double[n * Block], Gram: new double[n * n]),
            (b, _, local) =>
            {
                var start = b * Block;
                var count = Math.Min(Block, length - start);
                for (var i = 0; i < n; i++)
                {
                    TensorPrimitives.ConvertChecked(updates[i].Span.Slice(start, count), local.Rows.AsSpan(i * Block, count));
                }

                AddGram(local.Rows, Block, n, count, local.Gram);

                return local;
            },
            local =>
            {
                lock (gate)
                {
                    TensorPrimitives.Add(gram, local.Gram, gram);
                }
            });

        var distances = new double[n * n];
        for (var i = 0; i < n; i++)
        {
            for (var j = i + 1; j < n; j++)
            {
                // Rounding can make the difference slightly negative for (nearly) equal updates.
                var d = Math.Max(0, gram[(i * n) + i] + gram[(j * n) + j] - (2 * gram[(i * n) + j]));
                distances[(i * n) + j] = d;
                distances[(j * n) + i] = d;
            }
        }

        return distances;
    }

    /// <summary>
    /// gram[i·n + j] += rows[i]·rows[j] for i ≤ j (plus some i &gt; j inside diagonal tiles), over the first
    /// <paramref name="count"/> values of rows of <paramref name="stride"/> doubles. Tiles of 4 × 4 rows keep 16
    /// accumulators in registers and load 8 vectors per 16 multiply-adds, half the loads of row-by-row dot products.
    /// </summary>
    internal static void AddGram(double[] rows, int stride, int n, int count, double[] gram)
    {
        const int Tile = 4;
        var width = Vector<double>.Count;
        var vectorCount = count - (count % width);
        var tiled = n - (n % Tile);
        for (var i = 0; i < tiled; i += Tile)
        {
            for (var j = i; j < tiled; j += Tile)
            {
                AddTile(rows, stride, i, j, vectorCount, n, gram);
            }
        }

        // Rows outside whole tiles, and the coordinates after the last whole vector.
        for (var i = 0; i < n; i++)
        {
            var row = rows.AsSpan(i * stride, count);
            for (var j = i; j < n; j++)
            {
                var other = rows.AsSpan(j * stride, count);
                gram[(i * n) + j] += i < tiled && j < tiled
                    ? TensorPrimitives.Dot<double>(row[vectorCount..], other[vectorCount..])
                    : TensorPrimitives.Dot<double>(row, other);
            }
        }
    }

    private static void AddTile(double[] rows, int stride, int i, int j, int vectorCount, int n, double[] gram)
    {
        // The callers guarantee rows i..i+3 and j..j+3 exist and hold vectorCount values each.
        var width = Vector<double>.Count;
        ref var origin = ref MemoryMarshal.GetArrayDataReference(rows);
        ref var a0 = ref Unsafe.Add(ref origin, i * stride);
        ref var a1 = ref Unsafe.Add(ref a0, stride);
        ref var a2 = ref Unsafe.Add(ref a1, stride);
        ref var a3 = ref Unsafe.Add(ref a2, stride);
        ref var b0 = ref Unsafe.Add(ref origin, j * stride);
        ref var b1 = ref Unsafe.Add(ref b0, stride);
        ref var b2 = ref Unsafe.Add(ref b1, stride);
        ref var b3 = ref Unsafe.Add(ref b2, stride);
        Vector<double> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector<double> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector<double> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector<double> c30 = default, c31 = default, c32 = default, c33 = default;
        for (nuint k = 0; k < (nuint)vectorCount; k += (nuint)width)
        {
            var x0 = Vector.LoadUnsafe(ref a0, k);
            var x1 = Vector.LoadUnsafe(ref a1, k);
            var x2 = Vector.LoadUnsafe(ref a2, k);
            var x3 = Vector.LoadUnsafe(ref a3, k);
            var y = Vector.LoadUnsafe(ref b0, k);
            c00 = Vector.FusedMultiplyAdd(x0, y, c00);
            c10 = Vector.FusedMultiplyAdd(x1, y, c10);
            c20 = Vector.FusedMultiplyAdd(x2, y, c20);
            c30 = Vector.FusedMultiplyAdd(x3, y, c30);
            y = Vector.LoadUnsafe(ref b1, k);
            c01 = Vector.FusedMultiplyAdd(x0, y, c01);
            c11 = Vector.FusedMultiplyAdd(x1, y, c11);
            c21 = Vector.FusedMultiplyAdd(x2, y, c21);
            c31 = Vector.FusedMultiplyAdd(x3, y, c31);
            y = Vector.LoadUnsafe(ref b2, k);
            c02 = Vector.FusedMultiplyAdd(x0, y, c02);
            c12 = Vector.FusedMultiplyAdd(x1, y, c12);
            c22 = Vector.FusedMultiplyAdd(x2, y, c22);
            c32 = Vector.FusedMultiplyAdd(x3, y, c32);
            y = Vector.LoadUnsafe(ref b3, k);
            c03 = Vector.FusedMultiplyAdd(x0, y, c03);
            c13 = Vector.FusedMultiplyAdd(x1, y, c13);
            c23 = Vector.FusedMultiplyAdd(x2, y, c23);
            c33 = Vector.FusedMultiplyAdd(x3, y, c33);
        }

        ReadOnlySpan<Vector<double>> tile = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
        for (var p = 0; p < 4; p++)
        {
            for (var q = 0; q < 4; q++)
            {
                gram[((i + p) * n) + j + q] += Vector.Sum(tile[(p * 4) + q]);
            }
        }
    }
}
