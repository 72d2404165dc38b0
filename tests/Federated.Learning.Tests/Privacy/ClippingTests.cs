using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class ClippingTests
{
    [Theory]
    [InlineData(1.0)]
    [InlineData(0.01)]
    [InlineData(37.5)]
    public void Clip_BoundsEveryUpdatesNorm_AndKeepsItsDirection(double bound)
    {
        var generator = ChaCha20Random.FromSeed($"clip-{bound}");
        foreach (var scale in new[] { 1e-4, 0.3, 1, 7, 1e3, 1e6 })
        {
            foreach (var length in new[] { 1, 3, 1000, 5000 })
            {
                var update = new float[length];
                generator.FillGaussian(update, scale);
                var original = (float[])update.Clone();
                var before = L2Clipping.Norm(original);

                var result = L2Clipping.Clip(update, bound);

                var after = L2Clipping.Norm(update);
                Assert.True(after <= bound, $"scale {scale}, length {length}: norm {after:R} exceeds the bound {bound:R}");
                Assert.Equal(before, result.Norm, 10);
                Assert.Equal(before > bound, result.Clipped);
                if (result.Clipped)
                {
                    Assert.True(after > bound * (1 - 1e-5), $"clipped to {after}, far below {bound}");
                }
                else
                {
                    Assert.Equal(original, update);
                }

                // Same direction: every coordinate scaled by the same factor.
                for (var i = 0; i < length; i++)
                {
                    Assert.Equal(original[i] * result.Factor, update[i], Math.Abs(original[i] * 1e-6) + 1e-30);
                }
            }
        }
    }

    [Fact]
    public void Measure_LeavesTheUpdateUnchanged()
    {
        var update = new float[] { 3, 4 };

        var result = L2Clipping.Measure(update, 1);

        Assert.Equal([3f, 4f], update);
        Assert.Equal(5, result.Norm, 12);
        Assert.Equal(0.2 * (1 - L2Clipping.Margin), result.Factor, 15);
        Assert.True(result.Clipped);
    }

    [Fact]
    public void Norm_IsAccumulatedInDoublePrecision()
    {
        // 10⁶ × (1e-3)² + one 1: in float32 the small squares would be absorbed by the running sum.
        var vector = Enumerable.Repeat(1e-3f, 1_000_000).Append(1f).ToArray();

        var expected = Math.Sqrt((1_000_000 * (double)1e-3f * 1e-3f) + 1);
        Assert.Equal(expected, L2Clipping.Norm(vector), 12);
    }

    [Fact]
    public void Clip_RejectsBadBoundsAndNonFiniteUpdates()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => L2Clipping.Clip(new float[] { 1 }, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => L2Clipping.Clip(new float[] { 1 }, double.NaN));
        Assert.Throws<ArgumentException>(() => L2Clipping.Clip(new float[] { float.NaN }, 1));
    }
}
