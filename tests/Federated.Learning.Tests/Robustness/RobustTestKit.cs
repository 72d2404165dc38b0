using Federated.Learning.Data.Partitioning;
using Federated.Learning.Robustness;

namespace Federated.Learning.Tests.Robustness;

/// <summary>Builders and independent reference computations for the robust aggregation tests.</summary>
internal static class RobustTestKit
{
    public static IReadOnlyList<ReadOnlyMemory<float>> Rows(params float[][] rows) => rows.Select(r => (ReadOnlyMemory<float>)r).ToList();

    public static IReadOnlyList<double> Ones(int n) => Enumerable.Repeat(1.0, n).ToList();

    public static float[] Aggregate(IRobustAggregator rule, params float[][] rows) => rule.Aggregate(Rows(rows), Ones(rows.Length));

    /// <summary>n random vectors of length d, uniform in [lo, hi).</summary>
    public static float[][] Random(int n, int d, ulong seed, double lo = -1, double hi = 1)
    {
        var random = new StableRandom(seed);
        return Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, d).Select(_ => (float)(lo + ((hi - lo) * random.NextDouble()))).ToArray()).ToArray();
    }

    /// <summary>Column <paramref name="j"/> of <paramref name="rows"/>, sorted ascending.</summary>
    public static double[] SortedColumn(float[][] rows, int j) => rows.Select(r => (double)r[j]).Order().ToArray();

    /// <summary>Asserts element-wise closeness.</summary>
    public static void Close(IReadOnlyList<double> expected, float[] actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Count, actual.Length);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]} (all: {string.Join(", ", actual)})");
        }
    }

    /// <summary>Asserts that every coordinate of <paramref name="result"/> lies within the range of <paramref name="honest"/>'s values there.</summary>
    public static void WithinHonestRange(float[][] honest, float[] result)
    {
        for (var j = 0; j < result.Length; j++)
        {
            var column = honest.Select(h => h[j]).ToArray();
            Assert.InRange(result[j], column.Min(), column.Max());
        }
    }

    public static double Norm(float[] v) => Math.Sqrt(v.Sum(x => (double)x * x));

    public static float[] Minus(float[] a, float[] b) => a.Zip(b, (x, y) => x - y).ToArray();
}
