using Federated.Learning.Compression;

namespace Federated.Learning.Tests.Compression;

/// <summary>Unbiasedness in expectation, by averaging many encodings drawn with one fixed-seed generator.</summary>
public sealed class QuantizationStatisticsTests
{
    private const int Draws = 4000;

    [Theory]
    [InlineData(8)]
    [InlineData(4)]
    [InlineData(2)]
    public void Quantized_MeanOfManyDecodes_IsWithinFiveStandardErrorsOfTheInput(int bits)
    {
        // One block: the scale is max |x| = 1, so each element's rounding is a Bernoulli over one step.
        var x = Enumerable.Range(0, 64).Select(i => (float)Math.Sin(i * 0.7)).ToArray();
        x[0] = 1f;
        var mean = MeanOfDecodes(DeltaCodecs.Quantized(bits, 64), x, new CodecRandom(2024));

        var step = 1.0 / ((1 << (bits - 1)) - 1);
        var standardError = step / 2 / Math.Sqrt(Draws); // a Bernoulli over one step has variance ≤ step²/4
        for (var i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(mean[i] - x[i]) <= (5 * standardError) + 1e-6, $"{bits} bits, element {i}: mean {mean[i]} vs {x[i]} (5 se = {5 * standardError})");
        }
    }

    [Fact]
    public void Quantized_DifferentDraws_DifferButStayOnNeighbouringLevels()
    {
        float[] x = [0.25f, -0.6f, 1f, 0.1f];
        var codec = DeltaCodecs.Quantized(2, 4);
        var random = new CodecRandom(1);
        var seen = new HashSet<float>();
        var decoded = new float[x.Length];
        for (var d = 0; d < 200; d++)
        {
            codec.Decode(codec.EncodeToArray(x, random), decoded);
            Assert.InRange(decoded[0], 0f, 1f); // 0.25 rounds to 0 or 1 only
            Assert.InRange(decoded[1], -1f, 0f);
            Assert.Equal(1f, decoded[2]);
            seen.Add(decoded[0]);
        }

        Assert.Equal([0f, 1f], seen.Order());
    }

    [Fact]
    public void RandomKScaled_MeanOfManyDecodes_IsWithinFiveStandardErrorsOfTheInput()
    {
        var x = CodecTestKit.Delta(200, 31, sigma: 1.0);
        var mean = MeanOfDecodes(DeltaCodecs.RandomK(0.25, seeded: true, scaled: true), x, new CodecRandom(7));

        for (var i = 0; i < x.Length; i++)
        {
            // Kept with probability p = k/n as x/p: variance x²(1/p − 1).
            var standardError = Math.Abs(x[i]) * Math.Sqrt(3) / Math.Sqrt(Draws);
            Assert.True(Math.Abs(mean[i] - x[i]) <= (5 * standardError) + 1e-9, $"element {i}: mean {mean[i]} vs {x[i]}");
        }
    }

    /// <summary>The element-wise mean of <see cref="Draws"/> decodings of independent encodings of <paramref name="x"/>.</summary>
    private static double[] MeanOfDecodes(IDeltaCodec codec, float[] x, CodecRandom random)
    {
        var sum = new double[x.Length];
        var decoded = new float[x.Length];
        for (var d = 0; d < Draws; d++)
        {
            codec.Decode(codec.EncodeToArray(x, random), decoded);
            for (var i = 0; i < x.Length; i++)
            {
                sum[i] += decoded[i];
            }
        }

        return [.. sum.Select(s => s / Draws)];
    }
}
