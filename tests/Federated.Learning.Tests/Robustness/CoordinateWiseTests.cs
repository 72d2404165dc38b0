using System.Numerics;
using Federated.Learning.Robustness;
using static Federated.Learning.Tests.Robustness.RobustTestKit;

namespace Federated.Learning.Tests.Robustness;

public sealed class CoordinateWiseTests
{
    [Fact]
    public void Median_OddAndEvenCounts_MatchHandComputation()
    {
        var median = new CoordinateMedian();

        // Columns {1, 2, 100}, {10, 20, 0}, {−3, −1, −2}.
        Close([2, 10, -2], Aggregate(median, [1, 10, -3], [2, 20, -1], [100, 0, -2]));

        // Adding [3, 30, 5]: {1, 2, 3, 100} → 2.5, {0, 10, 20, 30} → 15, {−3, −2, −1, 5} → −1.5.
        Close([2.5, 15, -1.5], Aggregate(median, [1, 10, -3], [2, 20, -1], [100, 0, -2], [3, 30, 5]));
    }

    [Fact]
    public void TrimmedMean_DropsFloorBetaNFromEachSide()
    {
        // n = 5, β = 0.2: one value off each side. Columns {1, 2, 3, 4, 100} → (2 + 3 + 4)/3 and {−50, 0, 1, 2, 3} → 1.
        var trimmed = new TrimmedMean(0.2);
        Close([3, 1], Aggregate(trimmed, [100, 0], [1, 3], [4, -50], [2, 1], [3, 2]));

        // β = 0.19 trims ⌊0.95⌋ = 0: the plain mean (110/5 = 22, −44/5 = −8.8).
        Close([22, -8.8], Aggregate(new TrimmedMean(0.19), [100, 0], [1, 3], [4, -50], [2, 1], [3, 2]), 1e-5);
        Assert.Equal(2, trimmed.TrimCount(10));
        Assert.Equal(29, new TrimmedMean(0.29).TrimCount(100));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 9)]
    [InlineData(7, 19)]
    [InlineData(33, 100)]
    [InlineData(64, 3)]
    public void MedianAndTrimmedMean_RandomInputs_MatchSortedReference(int n, int d)
    {
        // d not a multiple of the vector width exercises the padded last group.
        var rows = Random(n, d, (ulong)((n * 1000) + d));
        var median = Aggregate(new CoordinateMedian(), rows);
        var trimmed = new TrimmedMean(0.3);
        var trimmedResult = Aggregate(trimmed, rows);
        var k = trimmed.TrimCount(n);
        for (var j = 0; j < d; j++)
        {
            var column = SortedColumn(rows, j);
            var expectedMedian = n % 2 == 1 ? column[n / 2] : (column[(n / 2) - 1] + column[n / 2]) / 2;
            Assert.Equal(expectedMedian, median[j], 6);
            Assert.Equal(column[k..(n - k)].Average(), trimmedResult[j], 5);
        }
    }

    [Theory]
    [InlineData(9, 4, 1)]
    [InlineData(9, 4, -1)]
    [InlineData(9, 4, 0)]
    [InlineData(21, 10, 0)]
    public void Median_FewerThanHalfArbitrary_StaysWithinHonestRange(int n, int f, int sign)
    {
        var honest = Random(n - f, 40, 7);
        var attackers = Random(f, 40, 8, -1e30, 1e30).Select(a => sign == 0 ? a : a.Select(x => sign * Math.Abs(x) * 1e8f).ToArray()).ToArray();
        var result = Aggregate(new CoordinateMedian(), [.. attackers, .. honest]);
        WithinHonestRange(honest, result);
    }

    [Fact]
    public void TrimmedMean_AtMostBetaNArbitrary_StaysWithinHonestRange_WhereTheMeanDoesNot()
    {
        // n = 10, β = 0.2 trims 2 per side; 2 attackers, both huge and positive.
        var honest = Random(8, 30, 11);
        float[][] attackers = [Enumerable.Repeat(3e37f, 30).ToArray(), Enumerable.Repeat(1e30f, 30).ToArray()];
        float[][] all = [.. honest, .. attackers];
        WithinHonestRange(honest, Aggregate(new TrimmedMean(0.2), all));

        var mean = Aggregate(new WeightedMean(), all);
        Assert.True(mean[0] > 1e36, "the weighted mean is dragged away (the check above can fail)");
    }

    [Fact]
    public void TrimmedMean_InvalidBeta_IsRejectedWithTheRange()
    {
        foreach (var beta in new[] { -0.1, 0.5, 0.7, double.NaN })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TrimmedMean(beta));
            Assert.Contains("[0, 0.5)", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Inputs_NonFiniteOrMismatched_AreRejected()
    {
        var median = new CoordinateMedian();
        Assert.Throws<ArgumentException>(() => Aggregate(median, [1, float.NaN], [1, 2]));
        Assert.Throws<ArgumentException>(() => Aggregate(median, [1, float.PositiveInfinity], [1, 2]));
        Assert.Throws<ArgumentException>(() => Aggregate(median, [1, 2], [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => median.Aggregate([], []));
        Assert.Throws<ArgumentException>(() => median.Aggregate(Rows([1], [2]), [1]));
        Assert.Throws<ArgumentException>(() => median.Aggregate(Rows([1], [2]), [1, 0]));
    }

    [Fact]
    public void SortingNetwork_SortsEveryLane_ForManySizes()
    {
        var lanes = Vector<float>.Count;
        for (var n = 1; n <= 70; n++)
        {
            var network = SortingNetwork.For(n);
            var values = Random(n, lanes, (ulong)n);
            var column = values.Select(v => new Vector<float>(v)).ToArray();
            SortingNetwork.Sort(column, network);
            for (var lane = 0; lane < lanes; lane++)
            {
                var expected = values.Select(v => v[lane]).Order().ToArray();
                Assert.Equal(expected, column.Select(v => v[lane]).ToArray());
            }
        }
    }

    [Fact]
    public void SortingNetwork_ZeroOnePrinciple_HoldsExhaustivelyUpTo12()
    {
        // A comparator network sorts every input iff it sorts every 0/1 input (Knuth's 0-1 principle).
        for (var n = 1; n <= 12; n++)
        {
            var network = SortingNetwork.For(n);
            for (var bits = 0; bits < 1 << n; bits++)
            {
                var column = Enumerable.Range(0, n).Select(t => new Vector<float>((bits >> t) & 1)).ToArray();
                SortingNetwork.Sort(column, network);
                for (var t = 1; t < n; t++)
                {
                    Assert.True(column[t - 1][0] <= column[t][0], $"n = {n}, input {bits}: not sorted at {t}");
                }
            }
        }
    }
}
