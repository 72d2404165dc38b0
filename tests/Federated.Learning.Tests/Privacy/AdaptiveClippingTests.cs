using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class AdaptiveClippingTests
{
    [Fact]
    public void UpdateNoiseMultiplier_FollowsTheFormula()
    {
        // z_Δ = (z⁻² − (2σ_b)⁻²)^−½ with z = 1, σ_b = 5: (1 − 1/100)^−½.
        Assert.Equal(1 / Math.Sqrt(0.99), AdaptiveClipping.UpdateNoiseMultiplier(1, 5), 14);

        // The count's noise spends part of the budget, so the update gets more noise than z, not less.
        Assert.True(AdaptiveClipping.UpdateNoiseMultiplier(1.2, 3) > 1.2);
    }

    [Theory]
    [InlineData(10, 5)]
    [InlineData(11, 5)]
    public void UpdateNoiseMultiplier_WhenTheCountSpendsTheWholeBudget_ThrowsAClearError(double z, double countNoise)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => AdaptiveClipping.UpdateNoiseMultiplier(z, countNoise));

        Assert.Contains("needs z < 2σ_b", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoisedUnclippedFraction_CentresTheCount_AndClamps()
    {
        // 30 of 40 participants unclipped, m = 40, no noise: (30 − 20)/40 + ½ = 0.75.
        Assert.Equal(0.75, AdaptiveClipping.NoisedUnclippedFraction(30, 40, 40, 0), 14);
        Assert.Equal(0.75 + (4.0 / 40), AdaptiveClipping.NoisedUnclippedFraction(30, 40, 40, 4), 14);
        Assert.Equal(1, AdaptiveClipping.NoisedUnclippedFraction(40, 40, 40, 100));
        Assert.Equal(0, AdaptiveClipping.NoisedUnclippedFraction(0, 40, 40, -100));
    }

    [Fact]
    public void NextBound_ShrinksWhenTooFewAreClipped_GrowsWhenTooMany()
    {
        var adaptive = new AdaptiveClipping { TargetQuantile = 0.5, LearningRate = 0.2, CountNoiseStddev = 1 };

        Assert.Equal(Math.Exp(-0.2 * 0.3), adaptive.NextBound(1, 0.8), 14);
        Assert.True(adaptive.NextBound(1, 0.2) > 1);
        Assert.Equal(1, adaptive.NextBound(1, 0.5), 14);
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(200.0)]
    public void Bound_OnASyntheticCohort_ConvergesToTheTargetQuantile(double initial)
    {
        // Update norms uniform on [0, 10): the 0.3-quantile is 3. 100 expected participants, σ_b = m/20 = 5.
        const double Quantile = 0.3;
        var adaptive = new AdaptiveClipping { TargetQuantile = Quantile, LearningRate = 0.2, CountNoiseStddev = 5 };
        var generator = ChaCha20Random.FromSeed($"cohort-{initial}");
        var bound = initial;
        var late = new List<double>();
        for (var round = 0; round < 400; round++)
        {
            var norms = Enumerable.Range(0, 100).Select(_ => 10 * generator.NextDouble()).ToArray();
            var unclipped = norms.Count(n => n <= bound);
            var fraction = adaptive.NoisedUnclippedFraction(unclipped, norms.Length, 100, generator);
            bound = adaptive.NextBound(bound, fraction);
            if (round >= 300)
            {
                late.Add(bound);
            }
        }

        var average = late.Average();
        Assert.True(Math.Abs(average - 3) < 0.3, $"from {initial}, the bound settles at {average:F3}, not near the 0.3-quantile 3");
    }

    [Fact]
    public void Validate_RejectsOutOfRangeFields()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveClipping { TargetQuantile = 1, CountNoiseStddev = 1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveClipping { LearningRate = 0, CountNoiseStddev = 1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveClipping { CountNoiseStddev = 0 }.Validate());
    }
}
