using Federated.Learning.Robustness;
using static Federated.Learning.Tests.Robustness.RobustTestKit;

namespace Federated.Learning.Tests.Robustness;

/// <summary>
/// The hand case: x0 = (0, 0), x1 = (1, 0), x2 = (0, 2), x3 = (2, 2), x4 = (10, 10), f = 1 (n = 5 = 2f + 3), so
/// each score sums the n − f − 2 = 2 smallest squared distances. Squared distances: 01 = 1, 02 = 4, 03 = 8,
/// 04 = 200, 12 = 5, 13 = 5, 14 = 181, 23 = 4, 24 = 164, 34 = 128. Scores: x0 = 1 + 4 = 5, x1 = 1 + 5 = 6,
/// x2 = 4 + 4 = 8, x3 = 4 + 5 = 9, x4 = 128 + 164 = 292.
/// </summary>
public sealed class KrumTests
{
    private static readonly float[][] HandCase = [[0, 0], [1, 0], [0, 2], [2, 2], [10, 10]];

    [Fact]
    public void Krum_HandCase_SelectsLowestScore()
    {
        var krum = MultiKrum.Krum(1);
        Assert.Equal([0, 1, 2, 3, 4], new MultiKrum(1, 5).Select(Rows(HandCase)));
        Assert.Equal([0], krum.Select(Rows(HandCase)));
        Assert.Equal([0f, 0f], Aggregate(krum, HandCase));
    }

    [Fact]
    public void MultiKrum_HandCase_AveragesTheBestMWithWeights()
    {
        double[] weights = [1, 1, 2, 1, 1];

        // m = 3: x0, x1, x2 with weights 1, 1, 2: ((0 + 1 + 0)/4, (0 + 0 + 4)/4) = (0.25, 1).
        Close([0.25, 1], new MultiKrum(1, 3).Aggregate(Rows(HandCase), weights));

        // m defaults to n − f = 4: x0..x3 with weights 1, 1, 2, 1: ((1 + 2)/5, (4 + 2)/5) = (0.6, 1.2).
        Close([0.6, 1.2], new MultiKrum(1).Aggregate(Rows(HandCase), weights));
    }

    [Theory]
    [InlineData(11, 4)]
    [InlineData(23, 10)]
    public void Krum_WithFOutliers_SelectsAnHonestUpdate(int n, int f)
    {
        var honest = Random(n - f, 50, 3);

        // Colluding attackers: f identical far points (their mutual distances are 0).
        var far = Enumerable.Repeat(1e20f, 50).ToArray();
        float[][] all = [.. Enumerable.Repeat(far, f), .. honest];
        var chosen = Aggregate(MultiKrum.Krum(f), all);
        Assert.Contains(honest, h => h.SequenceEqual(chosen));

        // Multi-Krum's default m = n − f averages exactly the honest updates.
        var selected = new MultiKrum(f).Select(Rows(all));
        Assert.All(selected, i => Assert.True(i >= f, $"selected attacker {i}"));
    }

    [Fact]
    public void Krum_TooFewUpdates_NamesThePrecondition()
    {
        var e = Assert.Throws<ArgumentException>(() => Aggregate(MultiKrum.Krum(2), Random(6, 3, 1)));
        Assert.Contains("2f + 3 = 7", e.Message, StringComparison.Ordinal);
        Assert.Contains("n = 6", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Aggregate(new MultiKrum(1, 6), HandCase));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MultiKrum(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MultiKrum(1, 0));
    }

    [Fact]
    public void Bulyan_HandCase_AveragesTheValuesClosestToTheMedian()
    {
        // d = 2, second coordinate = −first. Values 0, 1, 2, 6, 7, 100, −100; f = 1 (n = 7 = 4f + 3), θ = 5, β = 3.
        // Iterated Krum (f = 1) picks 2 (score 1 + 4 + 16 + 25 = 46), then 1, 6, 0, 7: {0, 1, 2, 6, 7}.
        // Median 2; the three values closest to it are 0, 1, 2: mean 1 (a trimmed mean would give (1 + 2 + 6)/3 = 3).
        float[][] rows = [[0, 0], [1, -1], [2, -2], [6, -6], [7, -7], [100, -100], [-100, 100]];
        Close([1, -1], Aggregate(new Bulyan(1), rows), 1e-6);
    }

    [Fact]
    public void Bulyan_WithFOutliers_StaysWithinHonestRange()
    {
        var honest = Random(8, 20, 5);
        float[][] all = [Enumerable.Repeat(1e30f, 20).ToArray(), Enumerable.Repeat(-1e30f, 20).ToArray(), .. honest];
        WithinHonestRange(honest, Aggregate(new Bulyan(2), [.. all, Random(1, 20, 6)[0]]));
    }

    [Fact]
    public void Bulyan_TooFewUpdates_NamesThePrecondition()
    {
        var e = Assert.Throws<ArgumentException>(() => Aggregate(new Bulyan(1), Random(6, 3, 1)));
        Assert.Contains("4f + 3 = 7", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bulyan(-1));
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(7, 37)]
    [InlineData(9, 1100)]
    public void PairwiseDistances_MatchDirectComputation(int n, int d)
    {
        // n not a multiple of the 4 × 4 tile, d not a multiple of the vector width or of the block.
        var rows = Random(n, d, 9);
        var distances = PairwiseDistances.Squared(Rows(rows), d);
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < n; j++)
            {
                var expected = rows[i].Zip(rows[j], (a, b) => ((double)a - b) * ((double)a - b)).Sum();
                Assert.Equal(expected, distances[(i * n) + j], 1e-9 * Math.Max(1, expected));
            }
        }
    }

    [Fact]
    public void PairwiseDistances_HugeValues_DoNotOverflow()
    {
        // (3e38)² overflows float32 but not double.
        var distances = PairwiseDistances.Squared(Rows([3e38f, 0], [-3e38f, 0], [0, 0]), 2);
        Assert.Equal(3.6e77, distances[1], 3.6e77 * 1e-6);
        Assert.Equal(9e76, distances[2], 9e76 * 1e-6);
    }
}
