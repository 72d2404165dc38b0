using Federated.Learning.Continual;

namespace Federated.Learning.Tests.Continual;

public sealed class AccuracyMatrixTests
{
    // R[i][j] after training on i, tested on j; b = random-init accuracies.
    private static readonly double[][] Rows =
    [
        [0.90, 0.10, 0.20],
        [0.60, 0.80, 0.30],
        [0.50, 0.70, 0.95],
    ];

    private static readonly double[] Baseline = [0.10, 0.15, 0.25];

    private static AccuracyMatrix Matrix() => AccuracyMatrix.FromRows(Rows, Baseline);

    [Fact]
    public void AverageAccuracy_IsTheMeanOfTheLastRow() => Assert.Equal((0.50 + 0.70 + 0.95) / 3, Matrix().AverageAccuracy(), 12);

    [Fact]
    public void AverageAccuracy_AfterAnEarlierExperience_AveragesTheSeenOnes() => Assert.Equal((0.60 + 0.80) / 2, Matrix().AverageAccuracy(1), 12);

    [Fact]
    public void BackwardTransfer_ComparesTheLastRowWithTheDiagonal() =>
        Assert.Equal(((0.50 - 0.90) + (0.70 - 0.80)) / 2, Matrix().BackwardTransfer(), 12);

    [Fact]
    public void Forgetting_ComparesWithTheBestEarlierAccuracy() =>
        Assert.Equal(((0.90 - 0.50) + (0.80 - 0.70)) / 2, Matrix().Forgetting(), 12);

    [Fact]
    public void ForwardTransfer_ComparesTheAboveDiagonalWithTheRandomBaseline() =>
        Assert.Equal(((0.10 - 0.15) + (0.30 - 0.25)) / 2, Matrix().ForwardTransfer(), 12);

    [Fact]
    public void Forgetting_UsesTheMaximumNotTheDiagonal()
    {
        // Experience 0 improves after experience 1 and then drops: forgetting counts from its best (0.95).
        var matrix = AccuracyMatrix.FromRows([[0.8, 0.1, 0.1], [0.95, 0.9, 0.1], [0.7, 0.9, 0.9]]);

        Assert.Equal(((0.95 - 0.7) + (0.9 - 0.9)) / 2, matrix.Forgetting(), 12);
        Assert.Equal(((0.7 - 0.8) + (0.9 - 0.9)) / 2, matrix.BackwardTransfer(), 12);
    }

    [Fact]
    public void SingleExperience_HasNoTransferOrForgetting()
    {
        var matrix = AccuracyMatrix.FromRows([[0.9]]);

        Assert.Equal(0.9, matrix.AverageAccuracy());
        Assert.True(double.IsNaN(matrix.BackwardTransfer()) && double.IsNaN(matrix.Forgetting()) && double.IsNaN(matrix.ForwardTransfer()));
    }

    [Fact]
    public void FromRows_RaggedRows_Throw() => Assert.Throws<ArgumentException>(() => AccuracyMatrix.FromRows([[1.0, 0.5], [1.0]]));
}
