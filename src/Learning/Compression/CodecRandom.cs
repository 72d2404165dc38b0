using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using System.Text;
using Federated.Learning.Data.Partitioning;

namespace Federated.Learning.Compression;

/// <summary>
/// The randomness of the stochastic codecs (quantisation dither, random-k selection), fixed by a seed: the same seed
/// gives the same encoding on every machine. Not thread-safe (one per encoding thread); not for cryptography or privacy.
/// </summary>
/// <remarks>
/// Scalar draws come from xoshiro256** (<see cref="StableRandom"/>); the per-element dither comes from eight
/// xoshiro128+ generators run side by side in one <see cref="Vector256{T}"/>, seeded from the scalar stream, so the
/// quantiser draws eight uniforms per instruction sequence.
/// </remarks>
public sealed class CodecRandom
{
    private readonly StableRandom _scalar;
    private UniformLanes _lanes;

    /// <summary>Creates a generator whose streams are determined by <paramref name="seed"/>.</summary>
    public CodecRandom(ulong seed)
    {
        _scalar = new StableRandom(seed);
        _lanes = UniformLanes.Create(_scalar);
    }

    /// <summary>
    /// The generator of one sender in one round: the seed is the first 8 bytes of SHA-256 over
    /// (<paramref name="sender"/>, <paramref name="runSeed"/>, <paramref name="round"/>), so every machine derives the
    /// same stream and two senders or two rounds never share one.
    /// </summary>
    public static CodecRandom ForSender(string sender, long runSeed, int round)
    {
        ArgumentNullException.ThrowIfNull(sender);
        var key = Encoding.UTF8.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{sender}\n{runSeed}\n{round}"));
        return new CodecRandom(BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(key)));
    }

    /// <summary>Returns the next 64 random bits of the scalar stream.</summary>
    public ulong NextUInt64() => _scalar.NextUInt64();

    /// <summary>The vector stream's state, for the kernels (copy to a local, use, store back).</summary>
    internal ref UniformLanes Lanes => ref _lanes;
}

/// <summary>Eight xoshiro128+ generators in the lanes of four <see cref="Vector256{T}"/> state words.</summary>
internal struct UniformLanes
{
    private const float Unit = 1f / (1 << 24);

    private Vector256<uint> _s0;
    private Vector256<uint> _s1;
    private Vector256<uint> _s2;
    private Vector256<uint> _s3;

    public static UniformLanes Create(StableRandom seeds)
    {
        Span<uint> state = stackalloc uint[32];
        for (var i = 0; i < state.Length; i += 2)
        {
            var bits = seeds.NextUInt64();
            state[i] = (uint)bits;
            state[i + 1] = (uint)(bits >> 32);
        }

        // xoshiro's only forbidden state is all zeros; give each lane a non-zero first word.
        for (var lane = 0; lane < 8; lane++)
        {
            state[lane] |= 1;
        }

        return new UniformLanes
        {
            _s0 = Vector256.Create<uint>(state[..8]),
            _s1 = Vector256.Create<uint>(state[8..16]),
            _s2 = Vector256.Create<uint>(state[16..24]),
            _s3 = Vector256.Create<uint>(state[24..32]),
        };
    }

    /// <summary>Eight uniforms in [0, 1), each from the top 24 bits of its lane's xoshiro128+ output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Next()
    {
        var result = _s0 + _s3;
        var t = _s1 << 9;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = (_s3 << 11) | (_s3 >>> 21);
        return Vector256.ConvertToSingle((result >>> 8).AsInt32()) * Vector256.Create(Unit);
    }
}
