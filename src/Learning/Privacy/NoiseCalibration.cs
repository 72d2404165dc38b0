namespace Federated.Learning.Privacy;

/// <summary>The search both accountants calibrate their noise with.</summary>
internal static class NoiseCalibration
{
    /// <summary>
    /// The smallest noise multiplier z (to a relative <paramref name="tolerance"/>) with <paramref name="epsilonOf"/>(z) ≤
    /// <paramref name="targetEpsilon"/>, for an ε that falls as z grows: doubles from <paramref name="start"/> until the
    /// target is met, then bisects between a z that misses it and one that meets it; the z returned meets it.
    /// </summary>
    /// <param name="epsilonOf">ε spent with noise multiplier z (it may throw when z is out of its reach).</param>
    /// <param name="targetEpsilon">The target ε.</param>
    /// <param name="start">The first z tried.</param>
    /// <param name="tolerance">The relative width the bisection stops at.</param>
    /// <param name="limit">The largest z the doubling may reach; beyond it <paramref name="outOfReach"/> is thrown.</param>
    /// <param name="outOfReach">The message of the <see cref="ArgumentException"/> (on <c>targetEpsilon</c>) when no z up to <paramref name="limit"/> meets the target.</param>
    public static double SmallestMultiplier(Func<double, double> epsilonOf, double targetEpsilon, double start, double tolerance, double limit = double.PositiveInfinity, string outOfReach = "")
    {
        double low = 0, high = start;
        while (epsilonOf(high) > targetEpsilon)
        {
            low = high;
            high *= 2;
            if (high > limit)
            {
                throw new ArgumentException(outOfReach, nameof(targetEpsilon));
            }
        }

        while (high - low > tolerance * high)
        {
            var middle = 0.5 * (low + high);
            if (epsilonOf(middle) > targetEpsilon)
            {
                low = middle;
            }
            else
            {
                high = middle;
            }
        }

        return high;
    }
}
