namespace Federated.Learning.Compression;

/// <summary>The codec of an encoded delta: the first byte of every payload (see <see cref="CodecHeader"/>).</summary>
#pragma warning disable CA1028 // The id is one byte on the wire.
public enum CodecId : byte
{
    /// <summary>Little-endian IEEE-754 float32, uncompressed (spec <c>f32</c>).</summary>
    Uncompressed = 1,

    /// <summary>IEEE-754 half precision, round-to-nearest-even, saturating at ±65504.</summary>
    Float16 = 2,

    /// <summary>bfloat16 (the upper half of a float32), round-to-nearest-even.</summary>
    BFloat16 = 3,

    /// <summary>Stochastic uniform quantisation to 8, 4 or 2 bits with a float32 scale per block (unbiased).</summary>
    Quantized = 4,

    /// <summary>One sign bit per element with a float32 scale (the mean magnitude) per block.</summary>
    Sign = 5,

    /// <summary>k of n coordinates (top-k or random-k): their indices, then their values under a dense codec.</summary>
    Sparse = 6,
}
#pragma warning restore CA1028
