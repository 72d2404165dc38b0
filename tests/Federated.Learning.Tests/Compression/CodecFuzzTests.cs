using Federated.Learning.Compression;
using Federated.Learning.Data.Partitioning;

namespace Federated.Learning.Tests.Compression;

/// <summary>
/// Property test over hostile input: for every codec, valid payloads mutated (bit flips, byte overwrites, cuts,
/// insertions, tails) and random bytes behind a plausible header. Every decoder must either decode to finite values
/// or throw <see cref="CodecException"/> — nothing else, no hang — and allocate only a bounded amount.
/// </summary>
public sealed class CodecFuzzTests
{
    private const int MutationsPerSpec = 400;
    private const long AllocationLimit = 256 * 1024;

    [Theory]
    [MemberData(nameof(CodecTestKit.SpecCases), MemberType = typeof(CodecTestKit))]
    public void Decoders_MutatedPayloads_DecodeFiniteOrThrowCodecException(string spec)
    {
        var random = new StableRandom(0xF022 ^ (ulong)spec.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        var codec = DeltaCodecs.Parse(spec);
        var outcomes = new int[2];
        for (var c = 0; c < MutationsPerSpec; c++)
        {
            var n = random.Next(4) == 0 ? random.Next(4) : 1 + random.Next(300);
            var payload = codec.EncodeToArray(CodecTestKit.Delta(n, (ulong)c), new CodecRandom((ulong)c));
            var mutated = Mutate(payload, random);
            outcomes[DecodeEveryWay(mutated, n, random) ? 0 : 1]++;
        }

        // Both outcomes occur: the mutations reach deep enough to be accepted sometimes and rejected often.
        Assert.True(outcomes[1] > MutationsPerSpec / 4, $"{spec}: only {outcomes[1]} of {MutationsPerSpec} mutations were rejected");
    }

    [Fact]
    public void Decoders_RandomBytesBehindAPlausibleHeader_DecodeFiniteOrThrowCodecException()
    {
        var random = new StableRandom(77);
        var rejected = 0;
        const int cases = 3000;
        for (var c = 0; c < cases; c++)
        {
            var n = random.Next(200);
            var bytes = new byte[random.Next(64) + (random.Next(2) == 0 ? 0 : 4 * n)];
            for (var i = 0; i < bytes.Length; i++)
            {
                bytes[i] = (byte)random.Next(256);
            }

            if (bytes.Length >= CodecHeader.Size && random.Next(4) != 0)
            {
                bytes[0] = (byte)(1 + random.Next(6));
                bytes[1] = 1;
                BitConverter.TryWriteBytes(bytes.AsSpan(2), (uint)n);
            }

            if (!DecodeEveryWay(bytes, n, random))
            {
                rejected++;
            }
        }

        Assert.True(rejected > cases / 2, $"only {rejected} of {cases} random payloads were rejected");
    }

    /// <summary>Decodes through every entry point; true when accepted (and then all agree and are finite).</summary>
    private static bool DecodeEveryWay(byte[] payload, int n, StableRandom random)
    {
        var written = new float[n];
        var added = new float[n];
        var streamed = new float[n];
        var outcomes = new[]
        {
            Outcome(() => DeltaCodecs.Decode(payload, written)),
            Outcome(() => DeltaCodecs.DecodeAdd(payload, 1.5f, added)),
            Outcome(() => DeltaCodecs.DecodeAdd(CodecTestKit.Segments(payload, random), 1.5f, new float[n])),
            Outcome(() => Stream(payload, streamed, random)),
        };

        Assert.True(outcomes.All(o => o == outcomes[0]), $"the decoders disagree on a payload of {payload.Length} bytes: {string.Join(", ", outcomes)}");
        if (outcomes[0])
        {
            Assert.All(written, v => Assert.True(float.IsFinite(v)));
            Assert.Equal(added, streamed);
        }

        return outcomes[0];
    }

    private static void Stream(byte[] payload, float[] accumulator, StableRandom random)
    {
        using var stream = new StreamingDeltaDecoder(accumulator, 1.5f, payload.Length);
        foreach (var segment in CodecTestKit.Segments(payload, random))
        {
            stream.Append(segment);
        }

        stream.Complete();
    }

    private static bool Outcome(Action decode)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            decode();
            return true;
        }
        catch (CodecException)
        {
            return false;
        }
        finally
        {
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationLimit, $"a decode allocated {allocated} bytes");
        }
    }

    private static byte[] Mutate(byte[] payload, StableRandom random)
    {
        var bytes = payload.ToList();
        var edits = 1 + random.Next(3);
        for (var e = 0; e < edits; e++)
        {
            switch (random.Next(6))
            {
                case 0 when bytes.Count > 0: // flip one bit
                    var bit = random.Next(bytes.Count * 8);
                    bytes[bit / 8] ^= (byte)(1 << (bit % 8));
                    break;
                case 1 when bytes.Count > 0: // overwrite a byte, often in the header and parameters
                    bytes[random.Next(Math.Min(bytes.Count, random.Next(2) == 0 ? 24 : bytes.Count))] = (byte)random.Next(256);
                    break;
                case 2: // truncate
                    bytes = bytes.Take(random.Next(bytes.Count + 1)).ToList();
                    break;
                case 3: // insert
                    bytes.Insert(random.Next(bytes.Count + 1), (byte)random.Next(256));
                    break;
                case 4: // append a tail
                    bytes.AddRange(Enumerable.Range(0, 1 + random.Next(8)).Select(_ => (byte)random.Next(256)));
                    break;
                case 5 when bytes.Count > 0: // extreme values where counts, lengths and scales live
                    var at = random.Next(Math.Min(bytes.Count, 24));
                    bytes[at] = random.Next(2) == 0 ? (byte)0xFF : (byte)0;
                    break;
                default:
                    break;
            }
        }

        return [.. bytes];
    }
}
