using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// Maps a float vector clipped to [−c, c] into the ring Z_{2^b} so that the sum of up to <see cref="MaxAgents"/>
/// quantised vectors never wraps: each coordinate becomes an integer q ∈ {0, …, L} with
/// L = ⌊(2^b − 1) / n_max⌋ levels, so any sum of n ≤ n_max of them is at most n_max·L ≤ 2^b − 1 and the ring sum is
/// the integer sum. A sum of n agents dequantises as Σx ≈ S·2c/L − n·c. The step 2c/L is the quantisation error
/// per agent (deterministic rounding: ≤ c/L; stochastic rounding: unbiased, variance ≤ (c/L)²).
/// </summary>
public sealed class RingQuantizer
{
    /// <summary>A quantiser for <paramref name="ringBits"/>-bit rings (1 to 32), clipping range ±<paramref name="clipRange"/> and sums of at most <paramref name="maxAgents"/> agents.</summary>
    public RingQuantizer(int ringBits, double clipRange, int maxAgents)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ringBits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ringBits, 32);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAgents, 1);
        if (!(clipRange > 0) || !double.IsFinite(clipRange))
        {
            throw new ArgumentOutOfRangeException(nameof(clipRange), clipRange, "The clipping range must be positive and finite.");
        }

        var ringMax = ringBits == 32 ? uint.MaxValue : (1u << ringBits) - 1;
        Levels = ringMax / (uint)maxAgents;
        if (Levels < 1)
        {
            throw new ArgumentException($"A {ringBits}-bit ring cannot hold the sum of {maxAgents} agents without wrapping.", nameof(ringBits));
        }

        RingBits = ringBits;
        ClipRange = clipRange;
        MaxAgents = maxAgents;
        RingMask = ringMax;
    }

    /// <summary>b: the ring is Z_{2^b}.</summary>
    public int RingBits { get; }

    /// <summary>c: values are clipped to [−c, c].</summary>
    public double ClipRange { get; }

    /// <summary>The most agents whose sum the ring holds without wrapping.</summary>
    public int MaxAgents { get; }

    /// <summary>L: quantised values lie in {0, …, L}.</summary>
    public uint Levels { get; }

    /// <summary>2^b − 1, the mask that reduces a 32-bit word into the ring.</summary>
    public uint RingMask { get; }

    /// <summary>The bytes of a ring vector of <paramref name="length"/> elements packed at b bits.</summary>
    public long EncodedBytes(long length) => ((length * RingBits) + 7) / 8;

    /// <summary>
    /// Quantises <paramref name="values"/> into <paramref name="destination"/>: clipped to [−c, c], scaled to [0, L],
    /// rounded stochastically with <paramref name="rounding"/> (unbiased) or to the nearest level when it is null.
    /// </summary>
    public void Quantize(ReadOnlySpan<float> values, Span<uint> destination, ChaCha20Random? rounding)
    {
        if (destination.Length != values.Length)
        {
            throw new ArgumentException("The destination must have one element per value.", nameof(destination));
        }

        var scale = Levels / (2 * ClipRange);
        for (var i = 0; i < values.Length; i++)
        {
            var y = (Math.Clamp(values[i], -ClipRange, ClipRange) + ClipRange) * scale;
            var q = rounding is null ? Math.Round(y) : Math.Floor(y + rounding.NextDouble());
            destination[i] = (uint)Math.Min(q, Levels); // NaN clamps to 0 on the cast's saturating conversion
        }
    }

    /// <summary>The float sum of <paramref name="agents"/> agents from their ring sum <paramref name="sum"/>: S·2c/L − n·c.</summary>
    public void Dequantize(ReadOnlySpan<uint> sum, int agents, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(agents, MaxAgents);
        if (destination.Length != sum.Length)
        {
            throw new ArgumentException("The destination must have one element per sum element.", nameof(destination));
        }

        var step = 2 * ClipRange / Levels;
        var offset = agents * ClipRange;
        for (var i = 0; i < sum.Length; i++)
        {
            destination[i] = (float)((sum[i] * step) - offset);
        }
    }
}
