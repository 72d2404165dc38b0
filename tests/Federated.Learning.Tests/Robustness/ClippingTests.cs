using Federated.Learning.Robustness;
using static Federated.Learning.Tests.Robustness.RobustTestKit;

namespace Federated.Learning.Tests.Robustness;

public sealed class ClippingTests
{
    [Fact]
    public void CenteredClipping_FromZero_MatchesHandComputation()
    {
        // Updates 0, 1, 100 (d = 1), τ = 2, v0 = 0. Iteration 1: distances 0, 1, 100; the last is clipped to 2:
        // v1 = (0 + 1 + 2)/3 = 1. Iteration 2: distances 1, 0, 99: v2 = 1 + (−1 + 0 + 2)/3 = 4/3.
        var metrics = new Dictionary<string, double>();
        Close([1], Aggregate(new CenteredClipping(tau: 2, iterations: 1), [0], [1], [100]));
        Close([4.0 / 3], new CenteredClipping(tau: 2, iterations: 2).Aggregate(Rows([0], [1], [100]), Ones(3), new RobustContext { Metrics = metrics }), 1e-6);
        Assert.Equal(1, metrics["robust.clipped"]);
    }

    [Fact]
    public void CenteredClipping_StartsFromThePreviousAggregate()
    {
        // v0 = 10: distances 10, 9, 90, all clipped to 2: v1 = 10 + (−2 − 2 + 2)/3 = 9.3333.
        var context = new RobustContext { Previous = new float[] { 10 } };
        Close([10 - (2.0 / 3)], new CenteredClipping(tau: 2, iterations: 1).Aggregate(Rows([0], [1], [100]), Ones(3), context), 1e-5);

        // Without a previous aggregate, start = median starts at 1: distances 1, 0, 99: v1 = 1 + (−1 + 0 + 2)/3 = 4/3.
        Close([4.0 / 3], Aggregate(new CenteredClipping(tau: 2, iterations: 1, start: ClippingStart.Median), [0], [1], [100]), 1e-6);
        Assert.Throws<ArgumentException>(() => new CenteredClipping().Aggregate(Rows([0, 1]), Ones(1), context));
    }

    [Fact]
    public void CenteredClipping_OutlierInfluence_DoesNotGrowWithItsSize()
    {
        var honest = Random(9, 20, 31, -0.1, 0.1);
        var direction = Random(1, 20, 32)[0];
        float[] Attack(float scale) => direction.Select(x => x * scale).ToArray();
        var rule = new CenteredClipping(tau: 0.5, iterations: 3, start: ClippingStart.Median);
        var clean = Aggregate(rule, honest);
        var small = Aggregate(rule, [.. honest, Attack(1e3f)]);
        var huge = Aggregate(rule, [.. honest, Attack(1e9f)]);

        // Each iteration the outlier moves the centre by at most τ/n = 0.05.
        Assert.True(Norm(Minus(huge, clean)) <= 3 * 0.5 / 10 + 0.2, $"moved by {Norm(Minus(huge, clean))}");
        Close(small.Select(x => (double)x).ToArray(), huge, 1e-4);
    }

    [Fact]
    public void NormBounding_FixedBound_ClipsThenAverages()
    {
        // [3, 4] has norm 5 and is scaled to [0.6, 0.8]; [0, 1] has norm 1 and stays: mean [0.3, 0.9].
        var metrics = new Dictionary<string, double>();
        Close([0.3, 0.9], new NormBounding(1).Aggregate(Rows([3, 4], [0, 1]), Ones(2), new RobustContext { Metrics = metrics }));
        Assert.Equal(1, metrics["robust.clipped"]);
    }

    [Fact]
    public void NormBounding_MedianBound_WithAndWithoutInner()
    {
        // Norms 5, 1, 2 → bound 2: [3, 4] → [1.2, 1.6]; the others stay.
        float[][] rows = [[3, 4], [0.6f, 0.8f], [0, 2]];

        // Weighted mean (weights 1, 1, 2): ((1.2 + 0.6 + 0)/4, (1.6 + 0.8 + 4)/4) = (0.45, 1.6).
        Close([0.45, 1.6], new NormBounding().Aggregate(Rows(rows), [1, 1, 2]), 1e-6);

        // Coordinate-wise median of the clipped updates: {1.2, 0.6, 0} → 0.6, {1.6, 0.8, 2} → 1.6.
        Close([0.6, 1.6], Aggregate(new NormBounding(null, new CoordinateMedian()), rows), 1e-6);
        Assert.Throws<ArgumentOutOfRangeException>(() => new NormBounding(0));
    }

    [Fact]
    public void CenteredClipping_Parameters_AreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CenteredClipping(tau: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CenteredClipping(iterations: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CenteredClipping(start: (ClippingStart)7));
    }
}
