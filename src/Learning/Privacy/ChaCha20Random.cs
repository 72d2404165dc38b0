using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using System.Text;

namespace Federated.Learning.Privacy;

/// <summary>
/// A cryptographically secure random generator for differential-privacy noise: the ChaCha20 keystream (RFC 8439's
/// block function, 20 rounds) under a 256-bit key, read as uniform integers, 53-bit uniform doubles and standard
/// Gaussians (Box–Muller in double precision). Never <see cref="Random"/>, whose output is predictable from a few
/// samples. The 64-bit block counter and a 64-bit stream id fill the RFC's counter and nonce words, so one key
/// gives 2⁶⁴ independent streams of 2⁶⁴ blocks each.
/// <para>
/// Keys: <see cref="FromEntropy"/> in production (the operating system's generator); <see cref="FromSeed"/> in
/// simulations, where the key is SHA-256 of the scenario's seed so that runs are reproducible. Anyone who knows a
/// seed knows the noise, so a seeded run carries no privacy guarantee at all.
/// </para>
/// <para>
/// Floating-point caveat (Mironov 2012, "On significance of the least significant bits for differential privacy"):
/// Gaussian samples computed in floating point do not have the exact Gaussian distribution. The set of doubles the
/// transform can produce, and their probabilities, depend on the sample, so the low-order bits of a noised value can
/// reveal which value was noised, and the (ε, δ) guarantee of the accountant holds for the ideal real-valued
/// mechanism, not bit-for-bit for this one. The remedies (snapping, or the discrete Gaussian of Canonne, Kamath and
/// Steinke 2020 with integer-valued updates) are not implemented; we accept the gap and say so. The noise is then
/// rounded to float32 along with the model, and the Box–Muller radius is truncated at √(−2 ln 2⁻⁵³) ≈ 8.57 standard
/// deviations.
/// </para>
/// Not thread-safe: give each thread its own stream (<see cref="WithStream"/>).
/// </summary>
public sealed class ChaCha20Random
{
    /// <summary>The key length in bytes.</summary>
    public const int KeySize = 32;

    private const int BlockWords = 16;
    private const double TwoPi = 2 * Math.PI;
    private const double InverseTwoTo53 = 1.0 / (1UL << 53);
    private const int ChunkPairs = 256;

    // "expand 32-byte k"
    private const uint Sigma0 = 0x61707865, Sigma1 = 0x3320646e, Sigma2 = 0x79622d32, Sigma3 = 0x6b206574;

    /// <summary>Blocks computed at once, one per SIMD lane.</summary>
    private static readonly int Lanes = Vector<uint>.Count;

    /// <summary>Byte shuffles that rotate every 32-bit word left by 16 and by 8 bits (one <c>vpshufb</c> instead of two shifts and an or).</summary>
    private static readonly Vector256<byte> RotateBy16 = Vector256.Create((byte)2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    private static readonly Vector256<byte> RotateBy8 = Vector256.Create((byte)3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);

    private readonly uint[] _key = new uint[8];
    private readonly uint[] _buffer = new uint[BlockWords * Lanes];
    private ulong _counter;
    private int _next;

    /// <summary>A generator keyed by <paramref name="key"/> (32 bytes), reading stream <paramref name="stream"/> from its start.</summary>
    public ChaCha20Random(ReadOnlySpan<byte> key, ulong stream = 0)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"A ChaCha20 key has {KeySize} bytes, not {key.Length}.", nameof(key));
        }

        for (var i = 0; i < _key.Length; i++)
        {
            _key[i] = BinaryPrimitives.ReadUInt32LittleEndian(key[(4 * i)..]);
        }

        Stream = stream;
        _next = _buffer.Length;
    }

    private ChaCha20Random(uint[] key, ulong stream)
    {
        key.CopyTo(_key, 0);
        Stream = stream;
        _next = _buffer.Length;
    }

    /// <summary>The stream id (the RFC nonce's last two words).</summary>
    public ulong Stream { get; }

    /// <summary>A generator keyed from the operating system's cryptographic generator (<see cref="RandomNumberGenerator"/>).</summary>
    public static ChaCha20Random FromEntropy()
    {
        Span<byte> key = stackalloc byte[KeySize];
        RandomNumberGenerator.Fill(key);
        var generator = new ChaCha20Random(key);
        CryptographicOperations.ZeroMemory(key);
        return generator;
    }

    /// <summary>
    /// A generator keyed by SHA-256 of <paramref name="seed"/> (UTF-8), for reproducible simulations; the noise it
    /// gives is known to anyone who knows the seed.
    /// </summary>
    public static ChaCha20Random FromSeed(string seed, ulong stream = 0)
    {
        ArgumentNullException.ThrowIfNull(seed);
        return new ChaCha20Random(SHA256.HashData(Encoding.UTF8.GetBytes(seed)), stream);
    }

    /// <summary>A generator with the same key reading stream <paramref name="stream"/> from its start.</summary>
    public ChaCha20Random WithStream(ulong stream) => new(_key, stream);

    /// <summary>The next 32 keystream bits (keystream word order: block by block, each block's words in order).</summary>
    public uint NextUInt32()
    {
        if (_next == _buffer.Length)
        {
            NextBlocks(_buffer);
            _next = 0;
        }

        return _buffer[_next++];
    }

    /// <summary>The next 64 keystream bits: the next word, then the one after it as the high half.</summary>
    public ulong NextUInt64()
    {
        ulong low = NextUInt32();
        return low | ((ulong)NextUInt32() << 32);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the values repeated <see cref="NextUInt64()"/> calls would give,
    /// writing whole runs of blocks in place.
    /// </summary>
    public void Fill(Span<ulong> destination)
    {
        var i = 0;
        while (i < destination.Length && (_next != _buffer.Length || !BitConverter.IsLittleEndian))
        {
            destination[i++] = NextUInt64();
        }

        // At a block boundary: Lanes blocks of 16 words are 8 × Lanes little-endian ulongs, low word first.
        var run = Lanes * BlockWords / 2;
        for (; destination.Length - i >= run; i += run)
        {
            NextBlocks(MemoryMarshal.Cast<ulong, uint>(destination.Slice(i, run)));
        }

        while (i < destination.Length)
        {
            destination[i++] = NextUInt64();
        }
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits (every multiple of 2⁻⁵³ equally likely).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * InverseTwoTo53;

    /// <summary>A standard Gaussian (the cosine half of a Box–Muller pair; the sine half is discarded).</summary>
    public double NextGaussian() => NextGaussianPair().First;

    /// <summary>Two independent standard Gaussians from one Box–Muller transform of two 53-bit uniforms.</summary>
    public (double First, double Second) NextGaussianPair()
    {
        // u1 ∈ (0, 1] keeps the logarithm finite; u2 ∈ [0, 1) the angle.
        var u1 = ((NextUInt64() >> 11) + 1) * InverseTwoTo53;
        var u2 = (NextUInt64() >> 11) * InverseTwoTo53;
        var radius = Math.Sqrt(-2 * Math.Log(u1));
        var (sin, cos) = Math.SinCos(TwoPi * u2);
        return (radius * cos, radius * sin);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with independent N(0, <paramref name="standardDeviation"/>²) samples: the
    /// same Box–Muller transform as <see cref="NextGaussianPair"/>, vectorised over chunks (its logarithm may differ
    /// from <see cref="Math.Log(double)"/> in the last bit, so the values are not bit-identical to that method's).
    /// </summary>
    public void FillGaussian(Span<float> destination, double standardDeviation) => Gaussian(destination, standardDeviation, add: false);

    /// <summary>Adds independent N(0, <paramref name="standardDeviation"/>²) noise to every element of <paramref name="values"/> (in double, then rounded), as <see cref="FillGaussian"/> draws it.</summary>
    public void AddGaussian(Span<float> values, double standardDeviation) => Gaussian(values, standardDeviation, add: true);

    /// <summary>
    /// The RFC 8439 (section 2.3) block function: the 64-byte keystream block for a 32-byte key, a 32-bit block
    /// counter and a 12-byte nonce.
    /// </summary>
    internal static void Block(ReadOnlySpan<byte> key, uint counter, ReadOnlySpan<byte> nonce, Span<byte> output)
    {
        if (key.Length != KeySize || nonce.Length != 12 || output.Length != 4 * BlockWords)
        {
            throw new ArgumentException("ChaCha20 needs a 32-byte key, a 12-byte nonce and a 64-byte output.");
        }

        Span<uint> keyWords = stackalloc uint[8];
        for (var i = 0; i < 8; i++)
        {
            keyWords[i] = BinaryPrimitives.ReadUInt32LittleEndian(key[(4 * i)..]);
        }

        // Every lane computes the same block; the first is kept.
        Span<uint> words = stackalloc uint[BlockWords * Lanes];
        Blocks(
            keyWords,
            new Vector<uint>(counter),
            new Vector<uint>(BinaryPrimitives.ReadUInt32LittleEndian(nonce)),
            BinaryPrimitives.ReadUInt32LittleEndian(nonce[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(nonce[8..]),
            words);
        for (var i = 0; i < BlockWords; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(output[(4 * i)..], words[i]);
        }
    }

    /// <summary>
    /// The block function for <see cref="Lanes"/> blocks at once: lane j of the vector for state word i holds word i
    /// of block j. The state is the four constants, the eight key words and the words 12..15 (the RFC's counter and
    /// nonce); 20 rounds (ten column-and-diagonal double rounds), then the input state is added back, and block j's
    /// words go to <c>output[16 j .. 16 j + 15]</c>.
    /// </summary>
    private static void Blocks(ReadOnlySpan<uint> key, Vector<uint> w12, Vector<uint> w13, uint w14, uint w15, Span<uint> output)
    {
        Vector<uint> x0 = new(Sigma0), x1 = new(Sigma1), x2 = new(Sigma2), x3 = new(Sigma3);
        Vector<uint> x4 = new(key[0]), x5 = new(key[1]), x6 = new(key[2]), x7 = new(key[3]);
        Vector<uint> x8 = new(key[4]), x9 = new(key[5]), x10 = new(key[6]), x11 = new(key[7]);
        Vector<uint> x12 = w12, x13 = w13, x14 = new(w14), x15 = new(w15);
        for (var round = 0; round < 10; round++)
        {
            QuarterRound(ref x0, ref x4, ref x8, ref x12);
            QuarterRound(ref x1, ref x5, ref x9, ref x13);
            QuarterRound(ref x2, ref x6, ref x10, ref x14);
            QuarterRound(ref x3, ref x7, ref x11, ref x15);
            QuarterRound(ref x0, ref x5, ref x10, ref x15);
            QuarterRound(ref x1, ref x6, ref x11, ref x12);
            QuarterRound(ref x2, ref x7, ref x8, ref x13);
            QuarterRound(ref x3, ref x4, ref x9, ref x14);
        }

        Span<uint> words = stackalloc uint[BlockWords * Lanes];
        ReadOnlySpan<Vector<uint>> state =
        [
            x0 + new Vector<uint>(Sigma0), x1 + new Vector<uint>(Sigma1), x2 + new Vector<uint>(Sigma2), x3 + new Vector<uint>(Sigma3),
            x4 + new Vector<uint>(key[0]), x5 + new Vector<uint>(key[1]), x6 + new Vector<uint>(key[2]), x7 + new Vector<uint>(key[3]),
            x8 + new Vector<uint>(key[4]), x9 + new Vector<uint>(key[5]), x10 + new Vector<uint>(key[6]), x11 + new Vector<uint>(key[7]),
            x12 + w12, x13 + w13, x14 + new Vector<uint>(w14), x15 + new Vector<uint>(w15),
        ];
        for (var i = 0; i < BlockWords; i++)
        {
            state[i].CopyTo(words[(i * Lanes)..]);
        }

        for (var j = 0; j < Lanes; j++)
        {
            var block = output.Slice(j * BlockWords, BlockWords);
            for (var i = 0; i < BlockWords; i++)
            {
                block[i] = words[(i * Lanes) + j];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void QuarterRound(ref Vector<uint> a, ref Vector<uint> b, ref Vector<uint> c, ref Vector<uint> d)
    {
        a += b;
        d = RotateLeft(d ^ a, 16);
        c += d;
        b = RotateLeft(b ^ c, 12);
        a += b;
        d = RotateLeft(d ^ a, 8);
        c += d;
        b = RotateLeft(b ^ c, 7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<uint> RotateLeft(Vector<uint> value, int bits)
    {
        // bits is a constant at every (inlined) call, so only one branch survives.
        if (Avx2.IsSupported && Vector<uint>.Count == 8 && bits is 16 or 8)
        {
            return Avx2.Shuffle(value.AsVector256().AsByte(), bits == 16 ? RotateBy16 : RotateBy8).AsUInt32().AsVector();
        }

        return Vector.ShiftLeft(value, bits) | Vector.ShiftRightLogical(value, 32 - bits);
    }

    /// <summary>The next <see cref="Lanes"/> blocks of this stream (64-bit counter in words 12–13, stream id in 14–15).</summary>
    private void NextBlocks(Span<uint> output)
    {
        if (ulong.MaxValue - _counter < (ulong)Lanes)
        {
            throw new InvalidOperationException("The ChaCha20 stream is exhausted (2⁶⁴ blocks); use another stream.");
        }

        Span<uint> low = stackalloc uint[Lanes];
        Span<uint> high = stackalloc uint[Lanes];
        for (var j = 0; j < Lanes; j++)
        {
            var counter = _counter + (ulong)j;
            low[j] = (uint)counter;
            high[j] = (uint)(counter >> 32);
        }

        Blocks(_key, new Vector<uint>(low), new Vector<uint>(high), (uint)Stream, (uint)(Stream >> 32), output);
        _counter += (ulong)Lanes;
    }

    private void Gaussian(Span<float> values, double standardDeviation, bool add)
    {
        if (!(standardDeviation >= 0) || !double.IsFinite(standardDeviation))
        {
            throw new ArgumentOutOfRangeException(nameof(standardDeviation), standardDeviation, "The standard deviation must be non-negative and finite.");
        }

        // Box–Muller on chunks of pairs, the logarithm, square root and sine/cosine vectorised over the chunk.
        Span<ulong> bits = stackalloc ulong[2 * ChunkPairs];
        Span<double> radius = stackalloc double[ChunkPairs];
        Span<double> angle = stackalloc double[ChunkPairs];
        Span<double> sin = stackalloc double[ChunkPairs];
        Span<double> cos = stackalloc double[ChunkPairs];
        for (var offset = 0; offset < values.Length; offset += 2 * ChunkPairs)
        {
            var count = Math.Min(2 * ChunkPairs, values.Length - offset);
            var pairs = (count + 1) / 2;
            var r = radius[..pairs];
            var a = angle[..pairs];
            var s = sin[..pairs];
            var c = cos[..pairs];
            Fill(bits[..(2 * pairs)]);
            for (var k = 0; k < pairs; k++)
            {
                r[k] = ((bits[2 * k] >> 11) + 1) * InverseTwoTo53;
                a[k] = (bits[(2 * k) + 1] >> 11) * InverseTwoTo53 * TwoPi;
            }

            TensorPrimitives.Log(r, r);
            TensorPrimitives.Multiply(r, -2.0, r);
            TensorPrimitives.Sqrt(r, r);
            TensorPrimitives.Multiply(r, standardDeviation, r);
            TensorPrimitives.SinCos(a, s, c);
            var chunk = values.Slice(offset, count);
            for (var k = 0; k < pairs; k++)
            {
                var i = 2 * k;
                chunk[i] = (float)((add ? chunk[i] : 0) + (r[k] * c[k]));
                if (i + 1 < count)
                {
                    chunk[i + 1] = (float)((add ? chunk[i + 1] : 0) + (r[k] * s[k]));
                }
            }
        }
    }
}
