namespace Federated.Learning.Training;

/// <summary>
/// The dynamic loss scale of float16 training (the rule of PyTorch's <c>GradScaler</c>): the loss is multiplied by
/// <see cref="Scale"/> before the backward pass so that small gradients do not underflow float16, and the gradients are
/// divided by it again before the step. A step whose gradients hold an inf or a NaN is skipped and the scale halves;
/// after <see cref="GrowthInterval"/> good steps in a row it doubles.
/// </summary>
public sealed class DynamicLossScaler
{
    /// <summary>What the scale is multiplied by after <see cref="GrowthInterval"/> good steps.</summary>
    public const double GrowthFactor = 2;

    /// <summary>What the scale is multiplied by after an overflow.</summary>
    public const double BackoffFactor = 0.5;

    /// <summary>Creates a scaler starting at <paramref name="initialScale"/> that grows after <paramref name="growthInterval"/> good steps.</summary>
    public DynamicLossScaler(double initialScale = 65536, int growthInterval = 2000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(growthInterval, 1);
        if (!(initialScale >= 1) || !double.IsFinite(initialScale))
        {
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, "The initial loss scale must be finite and at least 1.");
        }

        Scale = initialScale;
        GrowthInterval = growthInterval;
    }

    /// <summary>The current scale.</summary>
    public double Scale { get; private set; }

    /// <summary>Good steps in a row after which the scale grows.</summary>
    public int GrowthInterval { get; }

    /// <summary>Good steps since the last growth or overflow.</summary>
    public int GoodSteps { get; private set; }

    /// <summary>Steps skipped for overflowing gradients so far.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>
    /// Records one step's outcome and returns whether the optimiser may take it: false (skip, halve the scale) when the
    /// unscaled gradients were not all finite; true otherwise, doubling the scale after every
    /// <see cref="GrowthInterval"/> good steps in a row.
    /// </summary>
    public bool Update(bool gradientsFinite)
    {
        if (!gradientsFinite)
        {
            Scale *= BackoffFactor;
            GoodSteps = 0;
            SkippedSteps++;
            return false;
        }

        if (++GoodSteps >= GrowthInterval)
        {
            Scale *= GrowthFactor;
            GoodSteps = 0;
        }

        return true;
    }
}
