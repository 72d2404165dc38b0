using System.Buffers.Binary;
using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// Shamir t-of-k secret sharing over GF(2¹²⁷ − 1). A secret of any length is cut into chunks of
/// <see cref="ChunkBytes"/> bytes (120 bits, below the modulus), each chunk is the constant term of its own random
/// polynomial of degree t − 1, and share i holds every polynomial's value at x_i. Any t shares give the secret back
/// (Lagrange interpolation at 0); fewer reveal nothing about it.
/// </summary>
public static class ShamirSecretSharing
{
    /// <summary>Secret bytes per field element: 15 bytes = 120 bits &lt; 127.</summary>
    public const int ChunkBytes = 15;

    /// <summary>The number of field elements a secret of <paramref name="secretLength"/> bytes is cut into.</summary>
    public static int Chunks(int secretLength) => (secretLength + ChunkBytes - 1) / ChunkBytes;

    /// <summary>
    /// Splits <paramref name="secret"/> into one share per point in <paramref name="points"/> (distinct, 1 ≤ x), any
    /// <paramref name="threshold"/> of which reconstruct it. The polynomial coefficients come from
    /// <paramref name="random"/> (a cryptographic stream: <see cref="ChaCha20Random.FromEntropy"/> outside simulations).
    /// </summary>
    public static ShamirShare[] Split(ReadOnlySpan<byte> secret, IReadOnlyList<int> points, int threshold, ChaCha20Random random)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(random);
        if (secret.IsEmpty)
        {
            throw new ArgumentException("The secret is empty.", nameof(secret));
        }

        if (threshold < 1 || threshold > points.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"The threshold must be between 1 and the number of shares ({points.Count}).");
        }

        CheckPoints([.. points]);
        var chunks = Chunks(secret.Length);
        var shares = new ShamirShare[points.Count];
        for (var i = 0; i < shares.Length; i++)
        {
            shares[i] = new ShamirShare(points[i], new UInt128[chunks]);
        }

        var coefficients = new UInt128[threshold];
        for (var c = 0; c < chunks; c++)
        {
            coefficients[0] = ReadChunk(secret, c);
            for (var j = 1; j < threshold; j++)
            {
                coefficients[j] = Mersenne127.Random(random);
            }

            foreach (var share in shares)
            {
                // Horner's rule at x.
                var x = (UInt128)(uint)share.X;
                var value = UInt128.Zero;
                for (var j = threshold - 1; j >= 0; j--)
                {
                    value = Mersenne127.Add(Mersenne127.Multiply(value, x), coefficients[j]);
                }

                share.Values[c] = value;
            }
        }

        Array.Clear(coefficients);
        return shares;
    }

    /// <summary>
    /// The secret of <paramref name="secretLength"/> bytes from at least <paramref name="threshold"/> shares (the first
    /// <paramref name="threshold"/> are used). Throws <see cref="ArgumentException"/> for too few shares, duplicate or
    /// invalid points, values outside the field, or shares that interpolate to a value no secret chunk can have.
    /// </summary>
    public static byte[] Reconstruct(IReadOnlyList<ShamirShare> shares, int threshold, int secretLength)
    {
        ArgumentNullException.ThrowIfNull(shares);
        ArgumentOutOfRangeException.ThrowIfLessThan(threshold, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(secretLength, 1);
        if (shares.Count < threshold)
        {
            throw new ArgumentException($"{shares.Count} shares cannot reconstruct a secret with threshold {threshold}.", nameof(shares));
        }

        var used = shares.Take(threshold).ToList();
        CheckPoints(used.Select(s => s.X).ToList());
        var chunks = Chunks(secretLength);
        foreach (var share in used)
        {
            if (share.Values.Length != chunks || share.Values.Any(v => v >= Mersenne127.Modulus))
            {
                throw new ArgumentException($"The share at x = {share.X} does not hold {chunks} field elements.", nameof(shares));
            }
        }

        var lagrange = LagrangeAtZero(used.Select(s => (UInt128)(uint)s.X).ToArray());
        var secret = new byte[secretLength];
        for (var c = 0; c < chunks; c++)
        {
            var value = UInt128.Zero;
            for (var i = 0; i < used.Count; i++)
            {
                value = Mersenne127.Add(value, Mersenne127.Multiply(lagrange[i], used[i].Values[c]));
            }

            WriteChunk(secret, c, value);
        }

        return secret;
    }

    /// <summary>The Lagrange basis at 0: λ_i = Π_{j≠i} x_j / (x_j − x_i).</summary>
    private static UInt128[] LagrangeAtZero(UInt128[] xs)
    {
        var result = new UInt128[xs.Length];
        for (var i = 0; i < xs.Length; i++)
        {
            UInt128 numerator = UInt128.One, denominator = UInt128.One;
            for (var j = 0; j < xs.Length; j++)
            {
                if (j != i)
                {
                    numerator = Mersenne127.Multiply(numerator, xs[j]);
                    denominator = Mersenne127.Multiply(denominator, Mersenne127.Subtract(xs[j], xs[i]));
                }
            }

            result[i] = Mersenne127.Multiply(numerator, Mersenne127.Inverse(denominator));
        }

        return result;
    }

    private static void CheckPoints(List<int> points)
    {
        if (points.Any(x => x < 1))
        {
            throw new ArgumentException("Share points must be positive (x = 0 is the secret itself).", nameof(points));
        }

        if (points.Distinct().Count() != points.Count)
        {
            throw new ArgumentException("Share points must be distinct.", nameof(points));
        }
    }

    private static UInt128 ReadChunk(ReadOnlySpan<byte> secret, int chunk)
    {
        Span<byte> buffer = stackalloc byte[16];
        buffer.Clear();
        var start = chunk * ChunkBytes;
        secret.Slice(start, Math.Min(ChunkBytes, secret.Length - start)).CopyTo(buffer);
        var value = BinaryPrimitives.ReadUInt128LittleEndian(buffer);
        buffer.Clear();
        return value;
    }

    private static void WriteChunk(Span<byte> secret, int chunk, UInt128 value)
    {
        var start = chunk * ChunkBytes;
        var length = Math.Min(ChunkBytes, secret.Length - start);
        if (value >> (8 * length) != UInt128.Zero)
        {
            throw new ArgumentException("The shares are inconsistent: they interpolate to a value outside the secret's range.");
        }

        Span<byte> buffer = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128LittleEndian(buffer, value);
        buffer[..length].CopyTo(secret[start..]);
    }
}
