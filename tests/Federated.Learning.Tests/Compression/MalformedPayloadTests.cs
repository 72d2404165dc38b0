using System.Buffers.Binary;
using Federated.Learning.Compression;

namespace Federated.Learning.Tests.Compression;

/// <summary>Each kind of malformed payload is rejected with a <see cref="CodecException"/> that says what is wrong.</summary>
public sealed class MalformedPayloadTests
{
    public static TheoryData<string, byte[], int, string> Cases() => new()
    {
        { "empty", [], 4, "the codec header needs 6 byte(s) but only 0" },
        { "short header", [1, 1, 4], 4, "the codec header needs 6 byte(s) but only 3" },
        { "unknown codec id", [.. Header(9, 4)], 4, "Unknown codec id 9" },
        { "codec id zero", [.. Header(0, 4)], 4, "Unknown codec id 0" },
        { "unknown version", [2, 2, 4, 0, 0, 0, .. new byte[8]], 4, "version 2 is not supported" },
        { "count above int.MaxValue", [1, 1, 0xFF, 0xFF, 0xFF, 0xFF], 4, "more than a vector can hold" },
        { "count not the destination's", [.. Header(1, 5), .. F32(1, 2, 3, 4, 5)], 4, "holds 5 elements but the destination has 4" },
        { "truncated f32 body", [.. Header(1, 4), .. F32(1, 2, 3)], 4, "truncated" },
        { "trailing bytes", [.. Header(1, 4), .. F32(1, 2, 3, 4), 0], 4, "1 byte(s) after its end at byte 22" },
        { "f32 NaN", [.. Header(1, 4), .. F32(1, float.NaN, 3, 4)], 4, "f32 value 1 is NaN" },
        { "fp16 infinity", [.. Header(2, 2), 0x00, 0x3C, 0x00, 0x7C], 2, "fp16 value 1 is NaN or infinite" },
        { "bf16 NaN", [.. Header(3, 2), 0xC0, 0x7F, 0x80, 0x3F], 2, "bf16 value 0 is NaN or infinite" },
        { "q bits 3", [.. Header(4, 4), 3, .. U32(4), .. F32(1), 0, 0], 4, "declares 3 bits" },
        { "q block 0", [.. Header(4, 4), 8, .. U32(0), .. F32(1), 1, 2, 3, 4], 4, "block size 0" },
        { "q block too large", [.. Header(4, 4), 8, .. U32((1 << 24) + 1), .. F32(1), 1, 2, 3, 4], 4, "block size 16777217" },
        { "q negative scale", [.. Header(4, 4), 8, .. U32(4), .. F32(-1), 1, 2, 3, 4], 4, "block 0 has the scale -1" },
        { "q NaN scale", [.. Header(4, 4), 8, .. U32(2), .. F32(1), 1, 2, .. F32(float.NaN), 3, 4], 4, "q8 block 1 has the scale NaN" },
        { "q infinite scale", [.. Header(4, 2), 8, .. U32(2), .. F32(float.PositiveInfinity), 1, 2], 2, "has the scale Infinity" },
        { "q8 reserved code", [.. Header(4, 4), 8, .. U32(4), .. F32(1), 1, 2, 0xFF, 4], 4, "reserved code 255 at element 2" },
        { "q4 reserved code", [.. Header(4, 4), 4, .. U32(4), .. F32(1), 0x12, 0xF3], 4, "reserved code 15 at element 3" },
        { "q2 reserved code", [.. Header(4, 4), 2, .. U32(4), .. F32(1), 0b_00_11_01_00], 4, "reserved code 3 at element 2" },
        { "q4 padding bits", [.. Header(4, 3), 4, .. U32(3), .. F32(1), 0x12, 0x13], 3, "non-zero padding bits" },
        { "q truncated block", [.. Header(4, 4), 8, .. U32(4), .. F32(1), 1, 2], 4, "q8 unit 0 of 1 needs 8 byte(s) but only 6" },
        { "q parameters truncated", [.. Header(4, 4), 8, 4], 4, "the Quantized parameters needs 5 byte(s)" },
        { "sign zero block", [.. Header(5, 8), .. U32(0), .. F32(1), 0x0F], 8, "block size 0" },
        { "sign bad scale", [.. Header(5, 8), .. U32(8), .. F32(float.NegativeInfinity), 0x0F], 8, "sign block 0 has the scale -Infinity" },
        { "sign padding bits", [.. Header(5, 3), .. U32(3), .. F32(1), 0x0F], 3, "non-zero padding bits" },
        { "sparse k above n", [.. Header(6, 10), .. U32(11), 0, .. U32(11)], 10, "keeps 11 of 10 elements" },
        { "sparse unknown index format", [.. Header(6, 10), .. U32(1), 7, 0, 0, 0, 0], 10, "Unknown sparse index format 7" },
        { "varint index out of range", [.. Sparse(10, 2, 0, [.. U32(2), 3, 7], F32Payload(1, 2))], 10, "Index 1 is 10, out of range for 10 elements" },
        { "varint index repeated", [.. Sparse(10, 2, 0, [.. U32(2), 3, 0], F32Payload(1, 2))], 10, "Index 1 repeats index 3; indices must be strictly increasing" },
        { "varint section too short for k", [.. Sparse(10, 3, 0, [.. U32(2), 3, 1], F32Payload(1, 2, 3))], 10, "An index section of 2 byte(s) cannot hold 3 varint indices" },
        { "varint section length beyond payload", [.. Header(6, 10), .. U32(1), 0, .. U32(5), 1], 10, "the index section needs 5 byte(s) but only 1" },
        { "varint bytes after the last index", [.. Sparse(10, 1, 0, [.. U32(2), 3, 1], F32Payload(1))], 10, "1 byte(s) after the last of its 1 indices" },
        { "varint ends inside an index", [.. Sparse(1000, 2, 0, [.. U32(2), 3, 0x81], F32Payload(1, 2))], 1000, "ends inside index 1 of 2" },
        { "varint over 32 bits", [.. Sparse(1000, 1, 0, [.. U32(5), 0x80, 0x80, 0x80, 0x80, 0x10], F32Payload(1))], 1000, "longer than 32 bits" },
        { "bitmap bit count not k", [.. Sparse(10, 2, 1, [0b_0000_1011, 0], F32Payload(1, 2))], 10, "sets 3 bits but the payload keeps 2 values" },
        { "bitmap bit past n", [.. Sparse(10, 2, 1, [0b_0000_0001, 0b_0000_0100], F32Payload(1, 2))], 10, "sets bits past element 9" },
        { "seeded truncated seed", [.. Header(6, 10), .. U32(1), 2, 1, 2, 3], 10, "the index seed needs 8 byte(s) but only 3" },
        { "values use a sparse codec", [.. Sparse(10, 1, 0, [.. U32(1), 3], [.. Header(6, 1), .. U32(1), 1, 1])], 10, "must use a dense codec" },
        { "values count not k", [.. Sparse(10, 1, 0, [.. U32(1), 3], F32Payload(1, 2))], 10, "keeps 1 values but its value payload holds 2" },
        { "values truncated", [.. Sparse(10, 2, 0, [.. U32(2), 3, 1], [.. Header(1, 2), .. F32(1)])], 10, "f32 unit 0 of 1 needs 8 byte(s) but only 4" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_Malformed_ThrowsCodecExceptionThatSaysWhy(string name, byte[] payload, int length, string message)
    {
        var destination = new float[length];

        var error = Assert.Throws<CodecException>(() => DeltaCodecs.Decode(payload, destination));

        Assert.True(error.Message.Contains(message, StringComparison.Ordinal), $"{name}: '{error.Message}' does not say '{message}'");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DecodeAdd_Malformed_LeavesTheAccumulatorUnchanged(string name, byte[] payload, int length, string message)
    {
        var accumulator = Enumerable.Range(0, length).Select(i => i + 0.5f).ToArray();
        var before = accumulator.ToArray();

        Assert.Throws<CodecException>(() => DeltaCodecs.DecodeAdd(payload, 2f, accumulator));

        Assert.True(before.SequenceEqual(accumulator), $"{name} ({message}): the accumulator changed");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Streaming_Malformed_IsRejected_AndRevertRestoresTheAccumulator(string name, byte[] payload, int length, string message)
    {
        var accumulator = Enumerable.Range(0, length).Select(i => i + 0.5f).ToArray();
        var before = accumulator.ToArray();

        var error = Assert.ThrowsAny<CodecException>(() =>
        {
            using var stream = new StreamingDeltaDecoder(accumulator, 2f, payload.Length);
            try
            {
                foreach (var b in payload)
                {
                    stream.Append(new[] { b });
                }

                stream.Complete();
            }
            catch (CodecException)
            {
                stream.Revert();
                throw;
            }
        });

        Assert.NotNull(error);
        Assert.True(before.SequenceEqual(accumulator), $"{name} ({message}): the accumulator was not restored");
    }

    [Fact]
    public void Streaming_LateBadBlock_RevertTakesTheAppliedBlocksBackOut()
    {
        var x = CodecTestKit.Delta(4096, 61);
        var payload = CodecTestKit.Encode("q8:block=256", x);
        payload[^3] = 0xFF; // a reserved code in the last block
        var accumulator = CodecTestKit.Delta(4096, 62, sigma: 1.0);
        var before = accumulator.ToArray();
        using var stream = new StreamingDeltaDecoder(accumulator, 7f, payload.Length);

        stream.Append(payload.AsMemory(0, payload.Length / 2));
        Assert.NotEqual(before, accumulator); // blocks were applied as they arrived
        var error = Assert.Throws<CodecException>(() => stream.Append(payload.AsMemory(payload.Length / 2)));
        stream.Revert();

        Assert.Contains("reserved code 255", error.Message, StringComparison.Ordinal);
        for (var i = 0; i < before.Length; i++)
        {
            Assert.True(Math.Abs(accumulator[i] - before[i]) <= 1e-6 * Math.Max(1, Math.Abs(before[i])), $"element {i}: {accumulator[i]} vs {before[i]}");
        }
    }

    [Fact]
    public void Streaming_PayloadCutShortBeforeSending_RevertTakesTheAppliedBlocksBackOut()
    {
        // The declared length is the cut one, so the decoder learns a block cannot fit only when it reaches it — after
        // applying the blocks before it. Undoing them must not trip over that block again.
        var payload = CodecTestKit.Encode("q8:block=256", CodecTestKit.Delta(4096, 65))[..^7];
        var accumulator = CodecTestKit.Delta(4096, 66, sigma: 1.0);
        var before = accumulator.ToArray();
        using var stream = new StreamingDeltaDecoder(accumulator, 3f, payload.Length);

        var error = Assert.Throws<CodecException>(() => stream.Append(payload));
        Assert.NotEqual(before, accumulator);
        stream.Revert();

        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
        for (var i = 0; i < before.Length; i++)
        {
            Assert.True(Math.Abs(accumulator[i] - before[i]) <= 1e-6 * Math.Max(1, Math.Abs(before[i])), $"element {i}: {accumulator[i]} vs {before[i]}");
        }
    }

    [Fact]
    public void Streaming_StreamThatStops_CompleteThrowsTruncated()
    {
        var payload = CodecTestKit.Encode("topk:ratio=0.1+q4", CodecTestKit.Delta(1000, 63));
        var accumulator = new float[1000];
        using var stream = new StreamingDeltaDecoder(accumulator, 1f, payload.Length);

        stream.Append(payload.AsMemory(0, payload.Length - 10));
        var error = Assert.Throws<CodecException>(stream.Complete);
        stream.Revert();

        Assert.Contains($"truncated: it ended after {payload.Length - 10} byte(s)", error.Message, StringComparison.Ordinal);
        Assert.All(accumulator, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Streaming_MoreBytesThanDeclared_IsRejected()
    {
        var payload = CodecTestKit.Encode("fp16", CodecTestKit.Delta(10, 64));
        using var stream = new StreamingDeltaDecoder(new float[10], 1f, payload.Length - 1);

        var error = Assert.Throws<CodecException>(() => stream.Append(payload));

        Assert.Contains("longer than the 25 bytes it was declared to have", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DecodeAdd_NonFiniteWeight_IsAnArgumentError()
    {
        var payload = CodecTestKit.Encode("f32", [1f]);

        Assert.Throws<ArgumentOutOfRangeException>(() => DeltaCodecs.DecodeAdd(payload, float.NaN, new float[1]));
    }

    private static byte[] Header(byte id, uint count) => [id, 1, .. U32(count)];

    private static byte[] U32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return bytes;
    }

    private static byte[] F32(params float[] values) => values.SelectMany(v => BitConverter.GetBytes(v)).ToArray();

    private static byte[] F32Payload(params float[] values) => [.. Header(1, (uint)values.Length), .. F32(values)];

    /// <summary>A sparse payload: header, k, the index format (0 varint, 1 bitmap), the index section, the value payload.</summary>
    private static byte[] Sparse(uint n, uint k, byte format, byte[] section, byte[] values) =>
        [.. Header(6, n), .. U32(k), format, .. section, .. values];
}
