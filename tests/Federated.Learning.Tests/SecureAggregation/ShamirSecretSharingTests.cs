using System.Numerics;
using Federated.Learning.Privacy;
using Federated.Learning.SecureAggregation;

namespace Federated.Learning.Tests.SecureAggregation;

public sealed class ShamirSecretSharingTests
{
    private static readonly BigInteger Prime = (BigInteger.One << 127) - 1;

    [Fact]
    public void Multiply_RandomElements_MatchesBigInteger()
    {
        var random = ChaCha20Random.FromSeed("mersenne");
        for (var i = 0; i < 1000; i++)
        {
            var a = Mersenne127.Random(random);
            var b = i == 0 ? Mersenne127.Modulus - 1 : Mersenne127.Random(random);
            var expected = (ToBig(a) * ToBig(b)) % Prime;
            Assert.Equal(expected, ToBig(Mersenne127.Multiply(a, b)));
            Assert.Equal((ToBig(a) + ToBig(b)) % Prime, ToBig(Mersenne127.Add(a, b)));
            Assert.Equal(((ToBig(a) - ToBig(b)) % Prime + Prime) % Prime, ToBig(Mersenne127.Subtract(a, b)));
        }

        var x = Mersenne127.Random(random);
        Assert.Equal(UInt128.One, Mersenne127.Multiply(x, Mersenne127.Inverse(x)));
    }

    [Theory]
    [InlineData(32, 1, 5)]
    [InlineData(32, 3, 5)]
    [InlineData(32, 5, 5)]
    [InlineData(1, 2, 3)]
    [InlineData(47, 20, 40)]
    public void Reconstruct_AnyThresholdSubset_ReturnsSecret(int length, int threshold, int count)
    {
        var random = ChaCha20Random.FromSeed("shamir");
        var secret = new byte[length];
        for (var i = 0; i < length; i++)
        {
            secret[i] = (byte)(random.NextUInt32() | 0x80);
        }

        var points = Enumerable.Range(0, count).Select(i => (3 * i) + 7).ToArray();
        var shares = ShamirSecretSharing.Split(secret, points, threshold, random);

        Assert.Equal(secret, ShamirSecretSharing.Reconstruct(shares, threshold, length));
        Assert.Equal(secret, ShamirSecretSharing.Reconstruct([.. shares.Reverse().Take(threshold)], threshold, length));
        Assert.Equal(secret, ShamirSecretSharing.Reconstruct([.. shares.Where((_, i) => i % 2 == 1).Concat(shares.Where((_, i) => i % 2 == 0)).Take(threshold)], threshold, length));
    }

    [Fact]
    public void Reconstruct_FewerPointsThanThreshold_DoesNotGiveSecret()
    {
        var random = ChaCha20Random.FromSeed("shamir-few");
        var secret = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        var shares = ShamirSecretSharing.Split(secret, [1, 2, 3, 4, 5], 4, random);

        // Interpolating 3 of the 4 needed points is a different polynomial: the bytes are wrong or out of range.
        byte[]? guess = null;
        try
        {
            guess = ShamirSecretSharing.Reconstruct([.. shares.Take(3)], 3, 32);
        }
        catch (ArgumentException)
        {
        }

        Assert.NotEqual(secret, guess);
    }

    [Fact]
    public void Reconstruct_TooFewShares_Throws()
    {
        var shares = ShamirSecretSharing.Split(new byte[32], [1, 2, 3], 3, ChaCha20Random.FromSeed("few"));

        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Reconstruct([.. shares.Take(2)], 3, 32));
    }

    [Fact]
    public void Reconstruct_DuplicatePoint_Throws()
    {
        var shares = ShamirSecretSharing.Split(new byte[32], [1, 2, 3], 2, ChaCha20Random.FromSeed("dup"));

        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Reconstruct([shares[0], shares[0]], 2, 32));
    }

    [Fact]
    public void Reconstruct_ValueOutsideField_Throws()
    {
        var shares = ShamirSecretSharing.Split(new byte[32], [1, 2, 3], 2, ChaCha20Random.FromSeed("range"));
        shares[1].Values[0] = Mersenne127.Modulus;

        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Reconstruct(shares, 2, 32));
    }

    [Fact]
    public void Reconstruct_CorruptedShare_ThrowsOrDiffers()
    {
        var secret = Enumerable.Range(0, 32).Select(i => (byte)(255 - i)).ToArray();
        var shares = ShamirSecretSharing.Split(secret, [1, 2, 3], 3, ChaCha20Random.FromSeed("corrupt"));
        shares[2].Values[2] = Mersenne127.Add(shares[2].Values[2], UInt128.One << 100);

        // The last chunk (2 bytes) interpolates to a value off by λ₃·2¹⁰⁰ = 2¹⁰⁰ (λ₃ = 1 for x = 1, 2, 3): beyond 16 bits.
        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Reconstruct(shares, 3, 32));
    }

    [Theory]
    [InlineData(0, 3)]
    [InlineData(4, 3)]
    public void Split_BadThreshold_Throws(int threshold, int count)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            ShamirSecretSharing.Split(new byte[32], [.. Enumerable.Range(1, count)], threshold, ChaCha20Random.FromSeed("t")));
    }

    [Fact]
    public void Split_ZeroOrDuplicatePoint_Throws()
    {
        var random = ChaCha20Random.FromSeed("points");

        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Split(new byte[32], [0, 1, 2], 2, random));
        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Split(new byte[32], [1, 1, 2], 2, random));
    }

    [Fact]
    public void Share_WriteRead_RoundTrips()
    {
        var share = ShamirSecretSharing.Split(new byte[32], [9, 10], 2, ChaCha20Random.FromSeed("io"))[0];
        var bytes = new byte[ShamirShare.EncodedSize(share.Values.Length)];

        share.WriteTo(bytes);
        var read = ShamirShare.Read(bytes, share.Values.Length);

        Assert.Equal(share.X, read.X);
        Assert.Equal(share.Values, read.Values);
    }

    private static BigInteger ToBig(UInt128 value) => (BigInteger)value;
}
