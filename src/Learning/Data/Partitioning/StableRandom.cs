namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// A small, seeded pseudo-random generator (xoshiro256** seeded through SplitMix64) whose sequence is
/// fixed by this code alone, so that partitions are reproducible across .NET versions, unlike
/// <see cref="Random"/> whose algorithm may change. Not thread-safe; not for cryptography.
/// </summary>
/// <remarks>
/// The integer and uniform streams are bit-identical everywhere. <see cref="Gamma"/>, <see cref="Normal"/>
/// and <see cref="Dirichlet(double, int)"/> use <see cref="Math.Log(double)"/>, <see cref="Math.Sqrt"/> and
/// friends, so they are identical wherever the platform's math library rounds the same way (in practice
/// on every x64 and arm64 runtime).
/// </remarks>
public sealed class StableRandom
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;

    /// <summary>Creates a generator whose sequence is determined by <paramref name="seed"/>.</summary>
    public StableRandom(ulong seed)
    {
        var sm = seed;
        _s0 = SplitMix64(ref sm);
        _s1 = SplitMix64(ref sm);
        _s2 = SplitMix64(ref sm);
        _s3 = SplitMix64(ref sm);
    }

    /// <summary>Returns the next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Returns a uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Returns a uniform integer in [0, <paramref name="maxExclusive"/>), without modulo bias.</summary>
    public int Next(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        var bound = (ulong)maxExclusive;
        var threshold = (0UL - bound) % bound;
        while (true)
        {
            var product = Math.BigMul(NextUInt64(), bound, out var low);
            if (low >= threshold)
            {
                return (int)product;
            }
        }
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates).</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Returns a standard normal sample (Box–Muller, one value per call).</summary>
    public double Normal()
    {
        var u1 = 1.0 - NextDouble(); // (0, 1]
        var u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Returns a Gamma(<paramref name="shape"/>, 1) sample (Marsaglia–Tsang; shape &lt; 1 by boosting).</summary>
    /// <param name="shape">The shape parameter, positive and finite.</param>
    public double Gamma(double shape) => Math.Exp(LogGamma(shape));

    /// <summary>
    /// Returns the logarithm of a Gamma(<paramref name="shape"/>, 1) sample. Unlike <see cref="Gamma"/> this does
    /// not underflow to zero for tiny shapes, where the sample itself can be smaller than the smallest double.
    /// </summary>
    public double LogGamma(double shape)
    {
        if (!(shape > 0) || double.IsInfinity(shape))
        {
            throw new ArgumentOutOfRangeException(nameof(shape), shape, "The Gamma shape must be positive and finite.");
        }

        if (shape < 1)
        {
            // Gamma(a) = Gamma(a + 1) · U^(1/a)
            var u = 1.0 - NextDouble(); // (0, 1]
            return LogGammaAtLeastOne(shape + 1) + (Math.Log(u) / shape);
        }

        return LogGammaAtLeastOne(shape);
    }

    /// <summary>Returns a sample of the symmetric Dirichlet(<paramref name="alpha"/>, …, <paramref name="alpha"/>) over <paramref name="k"/> components.</summary>
    public double[] Dirichlet(double alpha, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        var result = new double[k];
        Dirichlet(alpha, result);
        return result;
    }

    /// <summary>Writes a sample of the symmetric Dirichlet(<paramref name="alpha"/>) into <paramref name="destination"/>; it sums to 1.</summary>
    public void Dirichlet(double alpha, Span<double> destination)
    {
        if (destination.IsEmpty)
        {
            throw new ArgumentException("A Dirichlet sample needs at least one component.", nameof(destination));
        }

        // Normalise in log space so tiny alphas (whose Gamma samples underflow) stay well defined.
        var max = double.NegativeInfinity;
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = LogGamma(alpha);
            max = Math.Max(max, destination[i]);
        }

        var sum = 0.0;
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = Math.Exp(destination[i] - max);
            sum += destination[i];
        }

        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] /= sum;
        }
    }

    private double LogGammaAtLeastOne(double shape)
    {
        var d = shape - (1.0 / 3.0);
        var c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x;
            double v;
            do
            {
                x = Normal();
                v = 1.0 + (c * x);
            }
            while (v <= 0);

            v = v * v * v;
            var u = 1.0 - NextDouble(); // (0, 1]
            var x2 = x * x;
            if (u < 1.0 - (0.0331 * x2 * x2) || Math.Log(u) < (0.5 * x2) + (d * (1.0 - v + Math.Log(v))))
            {
                return Math.Log(d) + Math.Log(v);
            }
        }
    }

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
