using System.Buffers;
using Federated.Learning.Compression;
using Federated.Learning.Data.Partitioning;

namespace Federated.Learning.Tests.Compression;

public sealed class CodecRoundTripTests
{
    [Fact]
    public void F32_RoundTrip_IsExact()
    {
        var x = CodecTestKit.Delta(1000, 1);
        var payload = CodecTestKit.Encode("f32", x);

        Assert.Equal(CodecHeader.Size + (4 * x.Length), payload.Length);
        Assert.Equal(x, CodecTestKit.Decode(payload, x.Length));
    }

    [Fact]
    public void Fp16_RoundTrip_RelativeErrorWithinHalfUlp_SmallValuesWithinAbsoluteBound()
    {
        var x = CodecTestKit.Delta(5000, 2, sigma: 1.0).Concat(CodecTestKit.Delta(5000, 3, sigma: 1e-5)).ToArray();
        var y = CodecTestKit.Decode(CodecTestKit.Encode("fp16", x), x.Length);

        for (var i = 0; i < x.Length; i++)
        {
            var error = Math.Abs(y[i] - x[i]);
            var bound = Math.Abs(x[i]) >= 6.103515625e-5 ? Math.Abs(x[i]) * Math.Pow(2, -11) : Math.Pow(2, -25);
            Assert.True(error <= bound, $"element {i}: {x[i]} decoded as {y[i]} (error {error}, bound {bound})");
        }
    }

    [Fact]
    public void Fp16_BeyondRange_SaturatesAtLargestHalf()
    {
        float[] x = [1e6f, -70000f, 65504f, 3e38f];
        var y = CodecTestKit.Decode(CodecTestKit.Encode("fp16", x), x.Length);

        Assert.Equal([65504f, -65504f, 65504f, 65504f], y);
    }

    [Fact]
    public void Bf16_RoundTrip_RelativeErrorWithin2PowMinus8()
    {
        var x = CodecTestKit.Delta(10_000, 4, sigma: 1e-4);
        var y = CodecTestKit.Decode(CodecTestKit.Encode("bf16", x), x.Length);

        for (var i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(y[i] - x[i]) <= Math.Abs(x[i]) * Math.Pow(2, -8), $"element {i}: {x[i]} decoded as {y[i]}");
        }
    }

    [Fact]
    public void Bf16_Ties_RoundToEven_AndHugeValuesSaturate()
    {
        // 1 + 2^-8 lies halfway between bf16 1 and 1 + 2^-7: even (1) wins; 1 + 3·2^-8 lies between 1 + 2^-7 and
        // 1 + 2^-6: even (1 + 2^-6) wins. Both in the vector body and in the scalar tail (8 + 3 elements).
        float[] pattern = [1f + (1f / 256), 1f + (3f / 256), -(1f + (1f / 256)), float.MaxValue];
        float[] expected = [1f, 1f + (1f / 64), -1f, BitConverter.UInt32BitsToSingle(0x7F7F0000)];
        var x = pattern.Concat(pattern).Concat(pattern[..3]).ToArray();
        var y = CodecTestKit.Decode(CodecTestKit.Encode("bf16", x), x.Length);

        Assert.Equal(expected.Concat(expected).Concat(expected[..3]), y);
    }

    [Theory]
    [InlineData(8, 512, 1000)]
    [InlineData(8, 7, 101)]
    [InlineData(4, 64, 1000)]
    [InlineData(4, 33, 517)]
    [InlineData(2, 512, 2049)]
    [InlineData(2, 5, 61)]
    public void Quantized_RoundTrip_ErrorBelowScaleOverLevels_AndOnTheGrid(int bits, int block, int n)
    {
        var x = CodecTestKit.Delta(n, 5);
        var payload = DeltaCodecs.Quantized(bits, block).EncodeToArray(x, new CodecRandom(9));
        var y = CodecTestKit.Decode(payload, n);

        var levels = (1 << (bits - 1)) - 1;
        for (var start = 0; start < n; start += block)
        {
            var length = Math.Min(block, n - start);
            var scale = x.AsSpan(start, length).ToArray().Max(Math.Abs);
            var step = scale / levels;
            for (var i = start; i < start + length; i++)
            {
                Assert.True(Math.Abs(y[i] - x[i]) < step * 1.0001, $"element {i}: {x[i]} decoded as {y[i]}, step {step}");
                var q = y[i] / step;
                Assert.True(Math.Abs(q - Math.Round(q)) < 1e-3 && Math.Abs(Math.Round(q)) <= levels, $"element {i}: {y[i]} is not on the {bits}-bit grid");
            }
        }
    }

    [Fact]
    public void Quantized_ZeroBlockAndTinyScales_DecodeFinite()
    {
        var x = new float[96];
        x[40] = 1e-40f; // subnormal: the block's L/s would overflow without lifting
        x[41] = -3e-41f;
        x[70] = 1e-35f;
        var y = CodecTestKit.Decode(CodecTestKit.Encode("q8:block=32", x), x.Length);

        Assert.All(y[..32], v => Assert.Equal(0f, v));
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
        Assert.True(Math.Abs(y[40] - x[40]) <= 1e-40f / 127 * 1.01);
    }

    [Theory]
    [InlineData(0, 1000)]
    [InlineData(64, 1000)]
    [InlineData(13, 100)]
    public void Sign_RoundTrip_IsSignTimesBlockMeanMagnitude(int block, int n)
    {
        var x = CodecTestKit.Delta(n, 6);
        var y = CodecTestKit.Decode(DeltaCodecs.Sign(block).EncodeToArray(x, new CodecRandom(1)), n);

        var size = block == 0 ? n : block;
        for (var start = 0; start < n; start += size)
        {
            var length = Math.Min(size, n - start);
            var mean = x.AsSpan(start, length).ToArray().Average(v => Math.Abs((double)v));
            var magnitude = Math.Abs(y[start]);
            Assert.True(Math.Abs(magnitude - mean) <= 1e-6 * mean, $"block at {start}: scale {magnitude} vs mean |x| {mean}");
            for (var i = start; i < start + length; i++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(x[i]) < 0 ? -magnitude : magnitude, y[i]);
            }
        }
    }

    [Fact]
    public void Sign_SizeIsOneBitPerElementPlusOneScale()
    {
        var payload = CodecTestKit.Encode("sign", CodecTestKit.Delta(10_000, 7));

        Assert.Equal(CodecHeader.Size + 4 + 4 + (10_000 / 8), payload.Length);
    }

    [Theory]
    [InlineData(1000, 0.01)]
    [InlineData(1000, 0.3)]
    [InlineData(37, 1.0)]
    [InlineData(5, 0.01)]
    public void TopK_KeepsExactlyTheKLargestMagnitudes(int n, double ratio)
    {
        var x = CodecTestKit.Delta(n, 8);
        x[3] = 0.5f; // ties at the threshold: the lower index wins
        x[n - 1] = -0.5f;
        var k = Math.Max(1, (int)Math.Round(ratio * n));
        var expected = Enumerable.Range(0, n).OrderByDescending(i => Math.Abs(x[i])).ThenBy(i => i).Take(k).ToHashSet();

        var y = CodecTestKit.Decode(DeltaCodecs.TopK(ratio).EncodeToArray(x, new CodecRandom(1)), n);

        for (var i = 0; i < n; i++)
        {
            Assert.Equal(expected.Contains(i) ? x[i] : 0f, y[i]);
        }
    }

    [Fact]
    public void TopK_WithQuantizedValues_KeepsIndicesAndBoundsTheValueError()
    {
        var x = CodecTestKit.Delta(5000, 9);
        var exact = CodecTestKit.Decode(CodecTestKit.Encode("topk:ratio=0.02", x), x.Length);
        var composed = CodecTestKit.Decode(CodecTestKit.Encode("topk:ratio=0.02+q8", x), x.Length);

        var step = x.Max(Math.Abs) / 127;
        Assert.Equal(100, exact.Count(v => v != 0));
        for (var i = 0; i < x.Length; i++)
        {
            if (exact[i] == 0)
            {
                Assert.Equal(0f, composed[i]);
            }

            Assert.True(Math.Abs(composed[i] - exact[i]) < step * 1.0001, $"element {i}: {composed[i]} vs {exact[i]}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RandomK_KeepsKCoordinates_RescaledByNOverK(bool seeded)
    {
        const int n = 10_000;
        var x = CodecTestKit.Delta(n, 10).Select(v => v == 0 ? 1e-3f : v).ToArray();
        var codec = DeltaCodecs.RandomK(0.01, seeded, scaled: true);
        var payload = codec.EncodeToArray(x, new CodecRandom(3));
        var y = CodecTestKit.Decode(payload, n);

        var kept = Enumerable.Range(0, n).Where(i => y[i] != 0).ToList();
        Assert.Equal(100, kept.Count);
        Assert.All(kept, i => Assert.Equal(x[i] * 100f, y[i]));
        Assert.Equal(seeded ? 2 : 0, payload[CodecHeader.Size + 4]); // the seed, or varint indices
        if (seeded)
        {
            Assert.Equal(CodecHeader.Size + 5 + 8 + CodecHeader.Size + (4 * 100), payload.Length);
        }
    }

    [Fact]
    public void RandomK_SameSeed_SameSubset_OtherSeed_Differs()
    {
        var x = CodecTestKit.Delta(1000, 11);
        var a = CodecTestKit.Encode("randk:ratio=0.1", x, seed: 5);
        var b = CodecTestKit.Encode("randk:ratio=0.1", x, seed: 5);
        var c = CodecTestKit.Encode("randk:ratio=0.1", x, seed: 6);

        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Theory]
    [InlineData(0.001, 0)] // 10 of 10,000: varints (≈ 2 bytes each) beat a 1,250-byte bitmap
    [InlineData(0.5, 1)] // 5,000 of 10,000: the bitmap is smaller
    public void Sparse_PicksTheSmallerIndexEncoding(double ratio, byte format)
    {
        var payload = DeltaCodecs.TopK(ratio).EncodeToArray(CodecTestKit.Delta(10_000, 12), new CodecRandom(1));

        Assert.Equal(format, payload[CodecHeader.Size + 4]);
    }

    [Theory]
    [MemberData(nameof(CodecTestKit.SpecCases), MemberType = typeof(CodecTestKit))]
    public void EveryCodec_EmptyVector_RoundTrips(string spec)
    {
        var payload = CodecTestKit.Encode(spec, []);

        Assert.Empty(CodecTestKit.Decode(payload, 0));
        Assert.Equal(0, DeltaCodecs.ReadHeader(payload).ElementCount);
    }

    [Theory]
    [MemberData(nameof(CodecTestKit.SpecCases), MemberType = typeof(CodecTestKit))]
    public void EveryCodec_SpecRoundTrips_AndEncodingIsDeterministicForASeed(string spec)
    {
        var codec = DeltaCodecs.Parse(spec);
        var x = CodecTestKit.Delta(300, 13);

        Assert.Equal(codec.Spec, DeltaCodecs.Parse(codec.Spec).Spec);
        Assert.Equal(codec.EncodeToArray(x, new CodecRandom(4)), DeltaCodecs.Parse(codec.Spec).EncodeToArray(x, new CodecRandom(4)));
        Assert.True(codec.EncodeToArray(x, new CodecRandom(4)).Length <= codec.GetMaxEncodedLength(x.Length));
    }

    [Theory]
    [MemberData(nameof(CodecTestKit.SpecCases), MemberType = typeof(CodecTestKit))]
    public void EveryCodec_DecodeAdd_AddsWeightTimesDecoded(string spec)
    {
        var x = CodecTestKit.Delta(777, 14);
        var payload = CodecTestKit.Encode(spec, x);
        var decoded = CodecTestKit.Decode(payload, x.Length);
        var accumulator = CodecTestKit.Delta(777, 15);
        var before = accumulator.ToArray();

        DeltaCodecs.DecodeAdd(payload, 3f, accumulator);

        for (var i = 0; i < x.Length; i++)
        {
            var expected = before[i] + (3.0 * decoded[i]);
            Assert.True(Math.Abs(accumulator[i] - expected) <= 1e-6 * (Math.Abs(expected) + 1e-3), $"element {i}: {accumulator[i]} vs {expected}");
        }
    }

    [Theory]
    [MemberData(nameof(CodecTestKit.SpecCases), MemberType = typeof(CodecTestKit))]
    public void EveryCodec_SequenceAndStreamingDecode_MatchTheSpanDecodeBitForBit(string spec)
    {
        var x = CodecTestKit.Delta(1500, 16);
        var payload = CodecTestKit.Encode(spec, x);
        var expected = CodecTestKit.Delta(1500, 17);
        var fromSequence = expected.ToArray();
        var fromStream = expected.ToArray();
        DeltaCodecs.DecodeAdd(payload, 2.5f, expected);

        var cuts = new StableRandom(18);
        DeltaCodecs.DecodeAdd(CodecTestKit.Segments(payload, cuts), 2.5f, fromSequence);
        using (var stream = new StreamingDeltaDecoder(fromStream, 2.5f, payload.Length))
        {
            foreach (var segment in CodecTestKit.Segments(payload, cuts))
            {
                stream.Append(segment);
            }

            stream.Complete();
            Assert.True(stream.IsComplete);
        }

        Assert.Equal(expected, fromSequence);
        Assert.Equal(expected, fromStream);
    }

    [Fact]
    public void SparseDecodeAdd_DoesNotAllocateADenseCopy()
    {
        const int n = 1_000_000;
        var x = CodecTestKit.Delta(n, 19);
        var accumulator = new float[n];
        foreach (var spec in new[] { "topk:ratio=0.0001+q8", "randk:ratio=0.0001,seeded=false" })
        {
            var payload = CodecTestKit.Encode(spec, x);
            DeltaCodecs.DecodeAdd(payload, 1f, accumulator); // warm the pools

            var before = GC.GetAllocatedBytesForCurrentThread();
            DeltaCodecs.DecodeAdd(payload, 1f, accumulator);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            Assert.True(allocated < n, $"{spec}: DecodeAdd allocated {allocated} bytes for a {n}-element vector");
        }
    }

    [Fact]
    public void CodecDecode_OfAnotherCodecsPayload_IsRejected_WhileDeltaCodecsDecodesIt()
    {
        var payload = CodecTestKit.Encode("q8", CodecTestKit.Delta(100, 20));
        var destination = new float[100];

        var error = Assert.Throws<CodecException>(() => DeltaCodecs.Float16.Decode(payload, destination));
        Assert.Contains("written by the Quantized codec, not Float16", error.Message, StringComparison.Ordinal);
        DeltaCodecs.Quantized(4).Decode(payload, destination); // same id, other parameters: decodes
        DeltaCodecs.Decode(payload, destination);
    }

    [Fact]
    public void Encode_NonFiniteInput_ThrowsArgumentException_AndWritesNothing()
    {
        float[] x = [1f, float.NaN, 3f];
        foreach (var spec in CodecTestKit.AllSpecs)
        {
            var writer = new ArrayBufferWriter<byte>();
            Assert.Throws<ArgumentException>(() => DeltaCodecs.Parse(spec).Encode(x, writer, new CodecRandom(1)));
            Assert.Equal(0, writer.WrittenCount);
        }
    }
}
