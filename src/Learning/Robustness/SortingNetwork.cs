using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Federated.Learning.Robustness;

/// <summary>
/// Batcher's odd–even merge sort as a fixed list of compare-exchange pairs for n elements (n ≠ power of two: the
/// comparators that would touch the missing elements, +∞ padding, are dropped; 1,104 pairs for n = 100). Applied to
/// <see cref="Vector{T}"/> elements with <see cref="Vector.Min{T}(Vector{T}, Vector{T})"/> and
/// <see cref="Vector.Max{T}(Vector{T}, Vector{T})"/>, it sorts <see cref="Vector{T}.Count"/> columns at once without
/// a single branch, which is what makes the coordinate-wise rules fast: a quickselect per column mispredicts about
/// every other comparison.
/// </summary>
internal static class SortingNetwork
{
    private static readonly ConcurrentDictionary<int, (int Low, int High)[]> Networks = new();

    /// <summary>The comparators for <paramref name="n"/> elements (cached).</summary>
    public static (int Low, int High)[] For(int n) => Networks.GetOrAdd(n, Build);

    /// <summary>Sorts every lane of <paramref name="column"/> ascending with <paramref name="network"/> (built for its length).</summary>
    public static void Sort(Span<Vector<float>> column, ReadOnlySpan<(int Low, int High)> network)
    {
        ref var first = ref MemoryMarshal.GetReference(column);
        foreach (var (low, high) in network)
        {
            ref var a = ref Unsafe.Add(ref first, low);
            ref var b = ref Unsafe.Add(ref first, high);
            var min = Vector.Min(a, b);
            b = Vector.Max(a, b);
            a = min;
        }
    }

    private static (int Low, int High)[] Build(int n)
    {
        var pairs = new List<(int, int)>();
        for (var p = 1; p < n; p *= 2)
        {
            for (var k = p; k >= 1; k /= 2)
            {
                for (var j = k % p; j < n - k; j += 2 * k)
                {
                    for (var i = 0; i < Math.Min(k, n - j - k); i++)
                    {
                        if ((i + j) / (p * 2) == (i + j + k) / (p * 2))
                        {
                            pairs.Add((i + j, i + j + k));
                        }
                    }
                }
            }
        }

        return [.. pairs];
    }
}
