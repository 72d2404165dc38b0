using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>One mask to add to (or subtract from) a ring vector: the ChaCha20 expansion of a 32-byte seed.</summary>
/// <param name="Seed">The 32-byte seed (a pairwise agreed seed or a self-mask seed).</param>
/// <param name="Negate">Subtract the expansion instead of adding it.</param>
public readonly record struct MaskTerm(byte[] Seed, bool Negate);

/// <summary>
/// Expands seeds into masks over Z_{2^32} with the ChaCha20 keystream (<see cref="ChaCha20Random"/>) and adds them
/// to a vector. Element i of a seed's mask lies in segment s = ⌊i / <see cref="SegmentLength"/>⌋ and is word
/// i mod <see cref="SegmentLength"/> of ChaCha20 stream s under the seed as key, so segments are independent and are
/// expanded in parallel; within a segment every mask is generated a cache-sized chunk at a time and folded into the
/// vector while that part of it is still in cache. Arithmetic is modulo 2³²; reduce modulo 2^b afterwards (2^b divides
/// 2³²), as <see cref="Apply"/> does.
/// </summary>
public static class MaskExpansion
{
    /// <summary>Elements per independent keystream (ChaCha20 stream id = segment index).</summary>
    public const int SegmentLength = 1 << 16;

    private const int ChunkWords = 4096;

    /// <summary>
    /// vector ← (vector ± Σ masks) mod 2^<paramref name="ringBits"/>. <paramref name="parallelism"/> bounds the threads
    /// (1: the calling thread only; -1: the runtime's choice).
    /// </summary>
    public static void Apply(Span<uint> vector, IReadOnlyList<MaskTerm> terms, int ringBits = 32, int parallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(terms);
        ArgumentOutOfRangeException.ThrowIfLessThan(ringBits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ringBits, 32);
        foreach (var term in terms)
        {
            if (term.Seed is not { Length: ChaCha20Random.KeySize })
            {
                throw new ArgumentException($"Every mask seed must have {ChaCha20Random.KeySize} bytes.", nameof(terms));
            }
        }

        var mask = ringBits == 32 ? uint.MaxValue : (1u << ringBits) - 1;
        var segments = (vector.Length + SegmentLength - 1) / SegmentLength;
        if (parallelism == 1 || segments == 1)
        {
            for (var s = 0; s < segments; s++)
            {
                ApplySegment(vector, s, terms, mask);
            }

            return;
        }

        unsafe
        {
            fixed (uint* pointer = vector)
            {
                var address = (nint)pointer;
                var length = vector.Length;
                Parallel.For(0, segments, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, s =>
                    ApplySegment(new Span<uint>((uint*)address, length), s, terms, mask));
            }
        }
    }

    private static void ApplySegment(Span<uint> vector, int segment, IReadOnlyList<MaskTerm> terms, uint mask)
    {
        var start = segment * SegmentLength;
        var part = vector.Slice(start, Math.Min(SegmentLength, vector.Length - start));
        var generators = new ChaCha20Random[terms.Count];
        for (var t = 0; t < terms.Count; t++)
        {
            generators[t] = new ChaCha20Random(terms[t].Seed, (ulong)segment);
        }

        Span<ulong> buffer = stackalloc ulong[ChunkWords / 2];
        var words = MemoryMarshal.Cast<ulong, uint>(buffer);
        for (var offset = 0; offset < part.Length; offset += ChunkWords)
        {
            var chunk = part.Slice(offset, Math.Min(ChunkWords, part.Length - offset));
            var used = words[..chunk.Length];
            for (var t = 0; t < terms.Count; t++)
            {
                generators[t].Fill(buffer[..((chunk.Length + 1) / 2)]);
                if (terms[t].Negate)
                {
                    TensorPrimitives.Subtract(chunk, used, chunk);
                }
                else
                {
                    TensorPrimitives.Add(chunk, used, chunk);
                }
            }

            if (mask != uint.MaxValue)
            {
                TensorPrimitives.BitwiseAnd(chunk, mask, chunk);
            }
        }
    }
}
