using System.Buffers.Binary;
using System.Text;
using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class ChaCha20RandomTests
{
    private static readonly byte[] SequentialKey = [.. Enumerable.Range(0, 32).Select(i => (byte)i)];

    [Fact]
    public void Block_Rfc8439Section232_MatchesTestVector()
    {
        var output = new byte[64];

        ChaCha20Random.Block(SequentialKey, 1, Convert.FromHexString("000000090000004a00000000"), output);

        Assert.Equal(
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e" +
            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e",
            Convert.ToHexStringLower(output));
    }

    [Theory]
    // RFC 8439 appendix A.1, test vectors 1 to 5: (key, block counter, nonce) → keystream block.
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000", 0u, "000000000000000000000000",
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000", 1u, "000000000000000000000000",
        "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000001", 1u, "000000000000000000000000",
        "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0")]
    [InlineData("00ff000000000000000000000000000000000000000000000000000000000000", 2u, "000000000000000000000000",
        "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000", 0u, "000000000000000000000002",
        "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c78a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d")]
    public void Block_Rfc8439AppendixA1_MatchesTestVectors(string key, uint counter, string nonce, string expected)
    {
        var output = new byte[64];

        ChaCha20Random.Block(Convert.FromHexString(key), counter, Convert.FromHexString(nonce), output);

        Assert.Equal(expected, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Generator_KeystreamIsTheRfcKeystream_Section242Sunscreen()
    {
        // RFC 8439 section 2.4.2 encrypts with nonce 00000000 0000004a 00000000 from block counter 1. The generator's
        // words 13..15 are (counter high, stream low, stream high), so stream 0x4a000000 is that nonce; skip block 0.
        var plaintext = Encoding.ASCII.GetBytes("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
        var generator = new ChaCha20Random(SequentialKey, 0x4a000000);
        for (var i = 0; i < 16; i++)
        {
            generator.NextUInt32();
        }

        var keystream = new byte[128];
        for (var i = 0; i < keystream.Length; i += 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(keystream.AsSpan(i), generator.NextUInt32());
        }

        var ciphertext = plaintext.Select((b, i) => (byte)(b ^ keystream[i])).ToArray();

        Assert.Equal(
            "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357" +
            "1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736" +
            "5af90bbf74a35be6b40b8eedf2785e42874d",
            Convert.ToHexStringLower(ciphertext));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, 1000)]
    [InlineData(1, 1001)]
    [InlineData(3, 257)]
    [InlineData(16, 64 * 17)]
    public void Fill_GivesWhatRepeatedNextUInt64Gives(int wordsConsumedFirst, int length)
    {
        // Fill writes whole blocks in place (SIMD, several at once); it must read the same stream, from any position.
        var bulk = ChaCha20Random.FromSeed("fill", 7);
        var scalar = ChaCha20Random.FromSeed("fill", 7);
        for (var i = 0; i < wordsConsumedFirst; i++)
        {
            Assert.Equal(scalar.NextUInt32(), bulk.NextUInt32());
        }

        var filled = new ulong[length];
        bulk.Fill(filled);

        var expected = Enumerable.Range(0, length).Select(_ => scalar.NextUInt64()).ToArray();
        Assert.Equal(expected, filled);
        Assert.Equal(scalar.NextUInt64(), bulk.NextUInt64());
    }

    [Fact]
    public void FillGaussian_MillionSamples_HaveTheRequestedMeanAndStandardDeviation()
    {
        // For n = 10⁶ the standard error of the sample standard deviation is σ/√(2n) ≈ 7e-4 σ and of the mean 1e-3 σ:
        // 3e-3 is four standard errors.
        const double Sigma = 2.5;
        var samples = new float[1_000_000];

        ChaCha20Random.FromSeed("noise-statistics").FillGaussian(samples, Sigma);

        var mean = samples.Average(s => (double)s);
        var std = Math.Sqrt(samples.Sum(s => (s - mean) * (s - mean)) / (samples.Length - 1));
        Assert.True(Math.Abs(mean) < 3e-3 * Sigma, $"mean {mean}");
        Assert.True(Math.Abs((std / Sigma) - 1) < 3e-3, $"standard deviation {std}, expected {Sigma}");

        // And the tails: about 4.55 % of a Gaussian lies beyond 2σ (binomial standard error 0.02 %).
        var beyondTwoSigma = samples.Count(s => Math.Abs(s) > 2 * Sigma) / (double)samples.Length;
        Assert.InRange(beyondTwoSigma, 0.0455 - 0.001, 0.0455 + 0.001);
    }

    [Fact]
    public void NextDouble_IsUniformOnTheUnitInterval()
    {
        var generator = ChaCha20Random.FromSeed("uniform");
        var values = Enumerable.Range(0, 200_000).Select(_ => generator.NextDouble()).ToArray();

        Assert.All(values, v => Assert.InRange(v, 0, 1 - 1e-17));
        Assert.InRange(values.Average(), 0.5 - 0.003, 0.5 + 0.003);
        Assert.InRange(values.Count(v => v < 0.25) / (double)values.Length, 0.25 - 0.004, 0.25 + 0.004);
    }

    [Fact]
    public void SameSeed_SameNoise_OtherSeedOrStream_OtherNoise()
    {
        static float[] Noise(ChaCha20Random generator)
        {
            var values = new float[1001];
            generator.FillGaussian(values, 1);
            return values;
        }

        var first = Noise(ChaCha20Random.FromSeed("scenario-42"));
        var again = Noise(ChaCha20Random.FromSeed("scenario-42"));
        var otherSeed = Noise(ChaCha20Random.FromSeed("scenario-43"));
        var otherStream = Noise(ChaCha20Random.FromSeed("scenario-42").WithStream(1));
        var entropy = Noise(ChaCha20Random.FromEntropy());

        Assert.Equal(first, again);
        Assert.NotEqual(first, otherSeed);
        Assert.NotEqual(first, otherStream);
        Assert.NotEqual(first, entropy);
    }

    [Fact]
    public void AddGaussian_AddsToTheValues_AndZeroDeviationAddsNothing()
    {
        var values = Enumerable.Range(0, 100).Select(i => (float)i).ToArray();
        var noise = new float[100];
        ChaCha20Random.FromSeed("add").FillGaussian(noise, 0.5);

        ChaCha20Random.FromSeed("add").AddGaussian(values, 0.5);

        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal(i + noise[i], values[i], 4);
        }

        var untouched = new float[] { 1, 2, 3 };
        ChaCha20Random.FromSeed("add").AddGaussian(untouched, 0);
        Assert.Equal([1f, 2f, 3f], untouched);
    }

    [Fact]
    public void Constructor_RejectsWrongKeyLength()
    {
        Assert.Throws<ArgumentException>(() => new ChaCha20Random(new byte[16]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChaCha20Random.FromSeed("x").FillGaussian(new float[2], -1));
    }
}
