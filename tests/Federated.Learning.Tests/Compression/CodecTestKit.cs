using System.Buffers;
using Federated.Learning.Compression;
using Federated.Learning.Data.Partitioning;

namespace Federated.Learning.Tests.Compression;

/// <summary>Test vectors and helpers shared by the codec tests.</summary>
internal static class CodecTestKit
{
    /// <summary>One spec per codec family and composition, with small blocks so tails and several blocks occur.</summary>
    public static readonly string[] AllSpecs =
    [
        "f32", "fp16", "bf16", "q8:block=64", "q4:block=37", "q2:block=16", "sign", "sign:block=24",
        "topk:ratio=0.1+f32", "topk:ratio=0.5+q8:block=8", "randk:ratio=0.2,seeded=true,scaled=true+f32",
        "randk:ratio=0.05,seeded=false,scaled=false+fp16", "topk:ratio=0.05+sign:block=4",
    ];

    public static IEnumerable<object[]> SpecCases() => AllSpecs.Select(s => new object[] { s });

    /// <summary>A delta-like vector: Gaussian values of scale <paramref name="sigma"/>, a few exact zeros and a few outliers.</summary>
    public static float[] Delta(int n, ulong seed, double sigma = 1e-3)
    {
        var random = new StableRandom(seed);
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            x[i] = (float)(random.Normal() * sigma);
        }

        for (var i = 0; i < n / 50; i++)
        {
            x[random.Next(n)] = 0f;
            x[random.Next(n)] = (float)(random.Normal() * sigma * 20);
        }

        return x;
    }

    public static byte[] Encode(string spec, float[] x, ulong seed = 1) => DeltaCodecs.Parse(spec).EncodeToArray(x, new CodecRandom(seed));

    public static float[] Decode(byte[] payload, int n)
    {
        var result = new float[n];
        DeltaCodecs.Decode(payload, result);
        return result;
    }

    /// <summary>A sequence of the payload cut at the given points.</summary>
    public static ReadOnlySequence<byte> Segments(byte[] payload, StableRandom random)
    {
        Segment? first = null;
        Segment? last = null;
        var start = 0;
        while (start < payload.Length || first is null)
        {
            var length = Math.Min(payload.Length - start, 1 + random.Next(17));
            var memory = payload.AsMemory(start, length);
            if (first is null)
            {
                first = last = new Segment(memory, 0);
            }
            else
            {
                last = last!.Append(memory);
            }

            start += length;
        }

        return new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
