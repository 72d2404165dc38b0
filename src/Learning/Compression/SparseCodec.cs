using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics.Tensors;

namespace Federated.Learning.Compression;

/// <summary>
/// Keeps k = max(1, round(ratio·n)) of n coordinates. Wire: the header (id <see cref="CodecId.Sparse"/>, n), k
/// (uint32), the index format (1 byte) and its section (see <see cref="SparseIndexFormat"/>: varints or a bitmap,
/// whichever is smaller, or a seed), then the k values as a complete payload of a dense codec (f32 by default;
/// <c>topk:ratio=0.01+q8</c> quantises them). Decoding with a weight touches only the k coordinates.
/// </summary>
internal abstract class SparseCodec : DeltaCodecBase
{
    /// <summary>The parameter bytes after the header: k and the index format.</summary>
    public const int WireParameterBytes = 5;

    private const int FixedBytes = CodecHeader.Size + WireParameterBytes;

    protected SparseCodec(double ratio, DenseCodec values)
    {
        if (!(ratio > 0 && ratio <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "The kept ratio must be in (0, 1].");
        }

        Ratio = ratio;
        Values = values ?? throw new ArgumentNullException(nameof(values));
    }

    /// <summary>The fraction of coordinates kept.</summary>
    public double Ratio { get; }

    /// <summary>The codec of the kept values.</summary>
    public DenseCodec Values { get; }

    public override CodecId Id => CodecId.Sparse;

    public override string Spec => string.Create(CultureInfo.InvariantCulture, $"{Name}:{Parameters}+{Values.Spec}");

    /// <summary>The spec's parameters, e.g. <c>ratio=0.01</c>.</summary>
    protected abstract string Parameters { get; }

    /// <summary>The number of coordinates kept out of <paramref name="count"/>.</summary>
    public int KeptCount(int count) => count == 0 ? 0 : (int)Math.Clamp(Math.Round(Ratio * count), 1, count);

    public override int Encode(ReadOnlySpan<float> input, IBufferWriter<byte> output, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(random);
        RequireFinite(input, nameof(input));
        var count = input.Length;
        var k = KeptCount(count);
        var indexArray = ArrayPool<int>.Shared.Rent(Math.Max(1, k));
        var valueArray = ArrayPool<float>.Shared.Rent(Math.Max(1, k));
        try
        {
            var indices = indexArray.AsSpan(0, k);
            var values = valueArray.AsSpan(0, k);
            var seed = Select(input, indices, random);
            var scale = ValueScale(count, k);
            for (var i = 0; i < k; i++)
            {
                values[i] = input[indices[i]] * scale;
            }

            if (!CodecKernels.AllFinite(values))
            {
                throw new ArgumentException($"{Spec}: rescaling the kept values by {scale} overflows float32.", nameof(input));
            }

            var bitmapBytes = (int)((count + 7L) / 8);
            var varintBytes = seed is null ? SparseIndices.VarintLength(indices) : long.MaxValue;
            var format = seed is not null ? SparseIndexFormat.Seeded
                : sizeof(uint) + varintBytes < bitmapBytes ? SparseIndexFormat.Varint
                : SparseIndexFormat.Bitmap;
            var sectionBytes = format switch
            {
                SparseIndexFormat.Seeded => sizeof(ulong),
                SparseIndexFormat.Varint => sizeof(uint) + (int)varintBytes,
                _ => bitmapBytes,
            };
            var headerBytes = FixedBytes + sectionBytes;
            var span = output.GetSpan(headerBytes)[..headerBytes];
            CodecHeader.Write(span, Id, count);
            BinaryPrimitives.WriteUInt32LittleEndian(span[CodecHeader.Size..], (uint)k);
            span[CodecHeader.Size + 4] = (byte)format;
            var section = span[FixedBytes..];
            switch (format)
            {
                case SparseIndexFormat.Seeded:
                    BinaryPrimitives.WriteUInt64LittleEndian(section, seed!.Value);
                    break;
                case SparseIndexFormat.Varint:
                    BinaryPrimitives.WriteUInt32LittleEndian(section, (uint)varintBytes);
                    SparseIndices.WriteVarints(indices, section[sizeof(uint)..]);
                    break;
                default:
                    SparseIndices.WriteBitmap(indices, section);
                    break;
            }

            output.Advance(headerBytes);
            return headerBytes + Values.Encode(values, output, random);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(indexArray);
            ArrayPool<float>.Shared.Return(valueArray);
        }
    }

    internal override long MaxEncodedLength(int elementCount) =>
        FixedBytes + Math.Max(sizeof(ulong), (elementCount + 7L) / 8) + Values.MaxEncodedLength(KeptCount(elementCount));

    /// <summary>
    /// Writes the kept indices (increasing) into <paramref name="indices"/>; returns the seed they were drawn from
    /// when the payload should carry it instead of the indices.
    /// </summary>
    protected abstract ulong? Select(ReadOnlySpan<float> input, Span<int> indices, CodecRandom random);

    /// <summary>The factor the kept values are multiplied by before they are encoded.</summary>
    protected virtual float ValueScale(int count, int k) => 1f;
}

/// <summary>Top-k: the k largest magnitudes (ties towards lower indices). Biased; use error feedback.</summary>
internal sealed class TopKCodec(double ratio, DenseCodec values) : SparseCodec(ratio, values)
{
    public override string Name => "topk";

    public override bool IsUnbiased => false;

    protected override string Parameters => string.Create(CultureInfo.InvariantCulture, $"ratio={Ratio:R}");

    protected override ulong? Select(ReadOnlySpan<float> input, Span<int> indices, CodecRandom random)
    {
        SparseIndices.SelectLargest(input, indices);
        return null;
    }
}

/// <summary>
/// Random-k: a uniformly random k-subset. With <see cref="Scaled"/> the kept values are multiplied by n/k, which
/// makes the codec unbiased (each coordinate is kept with probability k/n) when its value codec is; without, it
/// keeps the values as they are (lower variance, biased; for error feedback). With <see cref="Seeded"/> the payload
/// carries the 8-byte seed of the subset instead of the indices.
/// </summary>
internal sealed class RandomKCodec(double ratio, bool seeded, bool scaled, DenseCodec values) : SparseCodec(ratio, values)
{
    public bool Seeded { get; } = seeded;

    public bool Scaled { get; } = scaled;

    public override string Name => "randk";

    public override bool IsUnbiased => Scaled && Values.IsUnbiased;

    protected override string Parameters =>
        string.Create(CultureInfo.InvariantCulture, $"ratio={Ratio:R},seeded={(Seeded ? "true" : "false")},scaled={(Scaled ? "true" : "false")}");

    protected override float ValueScale(int count, int k) => Scaled && k > 0 ? (float)((double)count / k) : 1f;

    protected override ulong? Select(ReadOnlySpan<float> input, Span<int> indices, CodecRandom random)
    {
        var seed = random.NextUInt64();
        var length = (int)((input.Length + 7L) / 8);
        var bitmap = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        try
        {
            SparseIndices.SampleUniform(seed, input.Length, indices.Length, bitmap.AsSpan(0, length));
            SparseIndices.Collect(bitmap.AsSpan(0, length), indices);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bitmap);
        }

        return Seeded ? seed : null;
    }
}
