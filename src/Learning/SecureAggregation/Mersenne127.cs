using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// Arithmetic in the prime field GF(p) with the Mersenne prime p = 2¹²⁷ − 1, on <see cref="UInt128"/> values in
/// [0, p). Reduction uses 2¹²⁷ ≡ 1 (mod p): a 128-bit value x is (x mod 2¹²⁷) + ⌊x / 2¹²⁷⌋, and a 256-bit product
/// hi·2¹²⁸ + lo is 2·hi + lo.
/// </summary>
internal static class Mersenne127
{
    /// <summary>The modulus 2¹²⁷ − 1.</summary>
    public static readonly UInt128 Modulus = (UInt128.One << 127) - 1;

    /// <summary>x mod p for any 128-bit x.</summary>
    public static UInt128 Reduce(UInt128 x)
    {
        var r = (x & Modulus) + (x >> 127);
        return r >= Modulus ? r - Modulus : r;
    }

    /// <summary>(a + b) mod p for a, b in [0, p).</summary>
    public static UInt128 Add(UInt128 a, UInt128 b) => Reduce(a + b);

    /// <summary>(a − b) mod p for a, b in [0, p).</summary>
    public static UInt128 Subtract(UInt128 a, UInt128 b) => a >= b ? a - b : a + (Modulus - b);

    /// <summary>(a · b) mod p for a, b in [0, p): four 64 × 64-bit products, then the 256-bit fold.</summary>
    public static UInt128 Multiply(UInt128 a, UInt128 b)
    {
        var a0 = (ulong)a;
        var a1 = (ulong)(a >> 64);
        var b0 = (ulong)b;
        var b1 = (ulong)(b >> 64);
        var p00 = (UInt128)a0 * b0;
        var middle = ((UInt128)a0 * b1) + ((UInt128)a1 * b0); // each < 2¹²⁷, so no overflow
        var p11 = (UInt128)a1 * b1;
        var low = p00 + (middle << 64);
        var high = p11 + (middle >> 64) + (low < p00 ? UInt128.One : UInt128.Zero);
        return Add(Reduce(low), Reduce(high << 1)); // high < 2¹²⁷, so 2·high fits
    }

    /// <summary>a⁻¹ mod p for a ≠ 0 (Fermat: a^(p−2)).</summary>
    public static UInt128 Inverse(UInt128 a)
    {
        if (a == UInt128.Zero)
        {
            throw new DivideByZeroException("Zero has no inverse in GF(2¹²⁷ − 1).");
        }

        var exponent = Modulus - 2;
        var result = UInt128.One;
        var power = a;
        while (exponent != UInt128.Zero)
        {
            if ((exponent & UInt128.One) != UInt128.Zero)
            {
                result = Multiply(result, power);
            }

            power = Multiply(power, power);
            exponent >>= 1;
        }

        return result;
    }

    /// <summary>A uniform element of [0, p) from <paramref name="random"/> (127 random bits, p itself rejected).</summary>
    public static UInt128 Random(ChaCha20Random random)
    {
        while (true)
        {
            var low = random.NextUInt64();
            var high = random.NextUInt64() & (ulong.MaxValue >> 1);
            var value = ((UInt128)high << 64) | low;
            if (value != Modulus)
            {
                return value;
            }
        }
    }
}
