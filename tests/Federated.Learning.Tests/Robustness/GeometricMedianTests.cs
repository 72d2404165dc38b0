using Federated.Learning.Robustness;
using static Federated.Learning.Tests.Robustness.RobustTestKit;

namespace Federated.Learning.Tests.Robustness;

public sealed class GeometricMedianTests
{
    [Fact]
    public void OneDimension_IsTheMedian_NotTheMean()
    {
        // In one dimension the geometric median of {0, 1, 10} is the median 1 (the mean is 3.67).
        var metrics = new Dictionary<string, double>();
        var result = new GeometricMedian().Aggregate(Rows([0], [1], [10]), Ones(3), new RobustContext { Metrics = metrics });
        Close([1], result, 1e-4);
        Assert.InRange(metrics["robust.iterations"], 2, 100);
    }

    [Fact]
    public void Weights_MoveItToTheHeavierPoint()
    {
        // Weighted {0 (weight 3), 10 (weight 1)}: the objective 3|v| + |v − 10| is smallest at 0.
        Close([0], new GeometricMedian().Aggregate(Rows([0], [10]), [3, 1]), 1e-3);
    }

    [Fact]
    public void SymmetricObtuseTriangle_GivesTheApex()
    {
        // Apex (0, 0) and (±1, −0.2): the angle at the apex is 157° ≥ 120°, so the geometric median (Fermat point)
        // is the apex itself; by symmetry it lies on x = 0. The mean is (0, −0.1333).
        Close([0, 0], Aggregate(new GeometricMedian(), [0, 0], [-1, -0.2f], [1, -0.2f]), 1e-4);
    }

    [Fact]
    public void OneFarOutlier_BarelyMovesIt()
    {
        var honest = Random(9, 10, 21);
        var outlier = Enumerable.Repeat(1e6f, 10).ToArray();
        var clean = Aggregate(new GeometricMedian(), honest);
        var attacked = Aggregate(new GeometricMedian(), [.. honest, outlier]);

        // The outlier's pull is one unit vector against nine: a shift below the honest spread (≈ 1), while the mean moves by ≈ 3e5.
        Assert.True(Norm(Minus(attacked, clean)) < 1, $"moved by {Norm(Minus(attacked, clean))}");
        Assert.True(Norm(Minus(Aggregate(new WeightedMean(), [.. honest, outlier]), clean)) > 1e5);
    }

    [Fact]
    public void Parameters_AreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new GeometricMedian(nu: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GeometricMedian(maxIterations: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GeometricMedian(tolerance: -1));
    }
}
