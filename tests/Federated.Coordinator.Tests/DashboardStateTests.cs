using Federated.Coordinator.Dashboard;

namespace Federated.Coordinator.Tests;

public sealed class DashboardStateTests
{
    [Fact]
    public void ToPoint_RowWithoutEvaluation_HasNullsWhereTheCsvHasNaNOrNothing()
    {
        var point = DashboardStateBuilder.ToPoint(new Dictionary<string, string>
        {
            ["round"] = "3", ["ok"] = "false", ["results"] = "1", ["rejected"] = "2",
            ["test_accuracy"] = "NaN", ["test_loss"] = "NaN", ["train_loss"] = "0.51230",
            ["up_wire_bytes_total"] = "528048", ["epsilon"] = "1.2345678",
        });

        Assert.NotNull(point);
        Assert.Equal(3, point.Round);
        Assert.False(point.Ok);
        Assert.Equal(2, point.Rejected);
        Assert.Null(point.TestAccuracy);
        Assert.Null(point.TestLoss);
        Assert.Equal(0.5123, point.TrainLoss);
        Assert.Equal(528048, point.BytesUp);
        Assert.Null(point.BytesDown);
        Assert.Equal(1.2345678, point.Epsilon);
    }

    [Fact]
    public void ToPoint_RowWithoutRound_IsNull() =>
        Assert.Null(DashboardStateBuilder.ToPoint(new Dictionary<string, string> { ["ok"] = "true" }));
}
