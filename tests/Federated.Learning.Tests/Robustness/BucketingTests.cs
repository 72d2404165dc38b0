using Federated.Learning.Robustness;
using static Federated.Learning.Tests.Robustness.RobustTestKit;

namespace Federated.Learning.Tests.Robustness;

public sealed class BucketingTests
{
    public static TheoryData<string> InnerRules => new() { "median", "trimmed_mean:beta=0.2", "geometric_median", "centered_clipping:tau=0.5,iterations=3,start=median", "multikrum:f=2" };

    [Theory]
    [MemberData(nameof(InnerRules))]
    public void BucketSizeOne_EqualsTheInnerRule(string inner)
    {
        var rows = Random(10, 17, 41);
        double[] weights = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        var rule = RobustAggregators.Parse(inner);
        var expected = rule.Aggregate(Rows(rows), weights);
        var actual = new Bucketing(1, rule, seed: 5).Aggregate(Rows(rows), weights, new RobustContext { Round = 3 });
        Close(expected.Select(x => (double)x).ToArray(), actual, 1e-5);
    }

    [Fact]
    public void OneBucket_IsTheWeightedMean()
    {
        var rows = Random(5, 4, 42);
        double[] weights = [1, 2, 3, 4, 5];
        var expected = new WeightedMean().Aggregate(Rows(rows), weights);
        Close(expected.Select(x => (double)x).ToArray(), new Bucketing(5, new CoordinateMedian()).Aggregate(Rows(rows), weights), 1e-6);
    }

    [Fact]
    public void PairsThenMedian_IsTheMedianOfSomePairing_FixedBySeedAndRound()
    {
        // Six updates in buckets of two, then the median of the three bucket means: the result must be that of one of
        // the 15 ways to pair six items, the same for the same seed and round.
        var rows = Random(6, 3, 43, -10, 10);
        var rule = new Bucketing(2, new CoordinateMedian(), seed: 9);
        var result = rule.Aggregate(Rows(rows), Ones(6), new RobustContext { Round = 1 });
        Assert.Equal(result, rule.Aggregate(Rows(rows), Ones(6), new RobustContext { Round = 1 }));

        var candidates = Pairings([0, 1, 2, 3, 4, 5]).Select(pairs => Aggregate(
            new CoordinateMedian(),
            pairs.Select(p => rows[p.A].Zip(rows[p.B], (a, b) => (a + b) / 2)).Select(v => v.ToArray()).ToArray())).ToList();
        Assert.Equal(15, candidates.Count);
        Assert.Contains(candidates, c => c.Zip(result, (a, b) => Math.Abs(a - b)).Max() < 1e-5);

        // Different rounds permute differently: over a few rounds more than one pairing shows up.
        var outcomes = Enumerable.Range(1, 8).Select(r => string.Join(",", rule.Aggregate(Rows(rows), Ones(6), new RobustContext { Round = r }))).Distinct().Count();
        Assert.True(outcomes > 1);
    }

    [Fact]
    public void Parameters_AreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bucketing(0, new CoordinateMedian()));
        Assert.Throws<ArgumentNullException>(() => new Bucketing(2, null!));
    }

    private static IEnumerable<List<(int A, int B)>> Pairings(List<int> items)
    {
        if (items.Count == 0)
        {
            yield return [];
            yield break;
        }

        for (var k = 1; k < items.Count; k++)
        {
            var rest = items.Where((_, i) => i != 0 && i != k).ToList();
            foreach (var tail in Pairings(rest))
            {
                yield return [(items[0], items[k]), .. tail];
            }
        }
    }
}
