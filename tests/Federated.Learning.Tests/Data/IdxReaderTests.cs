using System.Buffers.Binary;
using System.IO.Compression;
using Federated.Learning.Data;
using Xunit;

namespace Federated.Learning.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "idx-tests-" + Guid.NewGuid().ToString("N"));

    public IdxReaderTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static byte[] BuildIdx(byte type, int[] shape, byte[] bigEndianData)
    {
        var bytes = new byte[4 + (4 * shape.Length) + bigEndianData.Length];
        bytes[2] = type;
        bytes[3] = (byte)shape.Length;
        for (var i = 0; i < shape.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + (4 * i)), shape[i]);
        }

        bigEndianData.CopyTo(bytes, 4 + (4 * shape.Length));
        return bytes;
    }

    internal static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest))
        {
            gz.Write(raw);
        }

        return output.ToArray();
    }

    private string WriteFile(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Read_UnsignedBytes_RoundTripsRawAndGzip(bool compressed)
    {
        var pixels = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 7)).ToArray();
        var raw = BuildIdx(0x08, [2, 3, 4], pixels);
        var path = WriteFile("images.bin", compressed ? Gzip(raw) : raw);

        var array = IdxReader.Read(path);

        Assert.Equal(IdxElementType.UnsignedByte, array.ElementType);
        Assert.Equal([2, 3, 4], array.Shape);
        Assert.Equal(2, array.Count);
        Assert.Equal(12, array.ElementsPerItem);
        Assert.Equal(pixels, array.AsBytes());
        Assert.Equal(pixels.Select(p => (float)p).ToArray(), array.ToSingle());
    }

    [Fact]
    public void Read_EveryElementType_ConvertsFromBigEndian()
    {
        var sbytes = BuildIdx(0x09, [3], [0xFF, 0x01, 0x80]);
        var shorts = new byte[6];
        BinaryPrimitives.WriteInt16BigEndian(shorts, -2);
        BinaryPrimitives.WriteInt16BigEndian(shorts.AsSpan(2), 300);
        BinaryPrimitives.WriteInt16BigEndian(shorts.AsSpan(4), 7);
        var ints = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(ints, 70000);
        BinaryPrimitives.WriteInt32BigEndian(ints.AsSpan(4), 9);
        var floats = new byte[8];
        BinaryPrimitives.WriteSingleBigEndian(floats, 1.5f);
        BinaryPrimitives.WriteSingleBigEndian(floats.AsSpan(4), -2.25f);
        var doubles = new byte[16];
        BinaryPrimitives.WriteDoubleBigEndian(doubles, Math.PI);
        BinaryPrimitives.WriteDoubleBigEndian(doubles.AsSpan(8), -1e10);

        var s8 = IdxReader.Read(new MemoryStream(sbytes), "s8");
        var s16 = IdxReader.Read(new MemoryStream(BuildIdx(0x0B, [3], shorts)), "s16");
        var s32 = IdxReader.Read(new MemoryStream(BuildIdx(0x0C, [2], ints)), "s32");
        var f32 = IdxReader.Read(new MemoryStream(BuildIdx(0x0D, [1, 2], floats)), "f32");
        var f64 = IdxReader.Read(new MemoryStream(BuildIdx(0x0E, [2, 1], doubles)), "f64");

        Assert.Equal(new sbyte[] { -1, 1, -128 }, s8.AsSpan<sbyte>().ToArray());
        Assert.Equal(new short[] { -2, 300, 7 }, s16.AsSpan<short>().ToArray());
        Assert.Equal([70000, 9], s32.AsSpan<int>().ToArray());
        Assert.Equal([1.5f, -2.25f], f32.AsSpan<float>().ToArray());
        Assert.Equal([Math.PI, -1e10], f64.AsSpan<double>().ToArray());
        Assert.Equal([-2f, 300f, 7f], s16.ToSingle());
        Assert.Equal([(float)Math.PI, -1e10f], f64.ToSingle());
        Assert.Equal([70000, 9], s32.ToInt32Labels());
        Assert.Equal(IdxElementType.DoublePrecision, f64.ElementType);
        Assert.Throws<InvalidOperationException>(() => f32.AsBytes());
        Assert.Throws<InvalidOperationException>(() => f32.AsSpan<int>());
        Assert.Throws<InvalidOperationException>(() => f32.ToInt32Labels());
        Assert.Throws<InvalidOperationException>(() => s8.ToInt32Labels()); // negative labels
    }

    [Fact]
    public void Read_TruncatedData_ReportsDeclaredAndActualSizes()
    {
        var raw = BuildIdx(0x08, [10, 28, 28], new byte[1234]);
        var path = WriteFile("trunc", raw);

        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.Contains("10×28×28 = 7,840 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("1,234", ex.Message, StringComparison.Ordinal);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_TruncatedGzip_ReportsTruncationOrCorruption()
    {
        var gz = Gzip(BuildIdx(0x08, [100, 10], Enumerable.Range(0, 1000).Select(i => (byte)(i * 31)).ToArray()));
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(gz[..(gz.Length / 2)]), "half.gz"));
        Assert.Contains("half.gz", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NonZeroMagic_ThrowsNotIdx()
    {
        var raw = BuildIdx(0x08, [1], [5]);
        raw[0] = 0x12;
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(raw), "bad.idx"));
        Assert.Contains("'bad.idx' is not an IDX file: magic bytes 0x12 0x00 must be zero", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_UnknownElementType_Throws()
    {
        var raw = BuildIdx(0x0A, [1], [5]);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(raw), "x"));
        Assert.Contains("unsupported IDX element type 0x0A", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void Read_NonPositiveDimension_Throws(int size)
    {
        var raw = BuildIdx(0x08, [2, size], []);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(raw), "x"));
        Assert.Contains("dimension 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_OverflowingShape_Throws()
    {
        var raw = BuildIdx(0x0E, [65536, 65536, 65536], []);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(raw), "huge"));
        Assert.Contains("more than one array can hold", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Read_TrailingBytes_Throws(bool compressed)
    {
        var raw = BuildIdx(0x08, [2], [1, 2, 3, 4, 5]);
        var bytes = compressed ? Gzip(raw) : raw;
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(bytes), "t"));
        Assert.Contains("trailing data", ex.Message, StringComparison.Ordinal);
        Assert.Contains("3 extra byte", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_CorruptGzip_WrapsDecompressionError()
    {
        var gz = Gzip(BuildIdx(0x08, [4], [1, 2, 3, 4]));
        gz[10] |= 0x06; // first deflate block: reserved block type 3
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream(gz), "c.gz"));
        Assert.Contains("'c.gz' is a corrupt gzip stream", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(ex.InnerException);
    }

    [Fact]
    public void Read_TooShortForMagic_Throws()
    {
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(new MemoryStream([0, 0]), "s"));
        Assert.Contains("not an IDX file", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_MissingFile_ThrowsFileNotFoundNamingPath()
    {
        var path = Path.Combine(_dir, "nope-idx1-ubyte");
        var ex = Assert.Throws<FileNotFoundException>(() => IdxReader.Read(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TransposeImagesInPlace_Square_TransposesEachImage()
    {
        // Two 2×2 images stored column-major.
        byte[] pixels = [1, 3, 2, 4, 5, 7, 6, 8];
        IdxImageSet.TransposeImagesInPlace(pixels, 2, 2, 2);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, pixels);
    }

    [Fact]
    public void TransposeImagesInPlace_NonSquareWithChannels_MovesWholePixels()
    {
        // One image declared 2 rows × 3 cols × 2 channels: element (r, c) holds pixel value 10r + c in both channels (+100 in channel 1).
        var pixels = new byte[12];
        for (var r = 0; r < 2; r++)
        {
            for (var c = 0; c < 3; c++)
            {
                pixels[((r * 3) + c) * 2] = (byte)((10 * r) + c);
                pixels[(((r * 3) + c) * 2) + 1] = (byte)(100 + (10 * r) + c);
            }
        }

        IdxImageSet.TransposeImagesInPlace(pixels, 1, 2, 3, channels: 2);

        // Now 3 rows × 2 cols: element (c, r) holds the old (r, c).
        for (var r = 0; r < 2; r++)
        {
            for (var c = 0; c < 3; c++)
            {
                Assert.Equal((byte)((10 * r) + c), pixels[((c * 2) + r) * 2]);
                Assert.Equal((byte)(100 + (10 * r) + c), pixels[(((c * 2) + r) * 2) + 1]);
            }
        }
    }

    [Fact]
    public void Load_TransposedLayout_ProducesUprightImages()
    {
        // 1 image 2×3 upright: [[1,2,3],[4,5,6]]; EMNIST-style storage is its transpose (3×2 declared).
        var images = WriteFile("img", BuildIdx(0x08, [1, 3, 2], [1, 4, 2, 5, 3, 6]));
        var labels = WriteFile("lbl", BuildIdx(0x08, [1], [9]));

        var set = IdxImageSet.Load(images, labels, IdxImageLayout.Transposed);

        Assert.Equal(2, set.Rows);
        Assert.Equal(3, set.Cols);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, set.Pixels);
        Assert.Equal(10, set.NumClasses);
    }

    [Fact]
    public void Load_MatchingFiles_ExposesShapeLabelsAndClasses()
    {
        var images = WriteFile("img.gz", Gzip(BuildIdx(0x08, [3, 2, 2], Enumerable.Range(0, 12).Select(i => (byte)i).ToArray())));
        var labels = WriteFile("lbl", BuildIdx(0x08, [3], [0, 4, 2]));

        var set = IdxImageSet.Load(images, labels);

        Assert.Equal(3, set.Count);
        Assert.Equal((2, 2, 1), (set.Rows, set.Cols, set.Channels));
        Assert.Equal(4, set.PixelsPerImage);
        Assert.Equal([0, 4, 2], set.Labels);
        Assert.Equal(5, set.NumClasses);
        Assert.Equal(11, set.Pixels[11]);
    }

    [Fact]
    public void Load_FourDimensionalImages_TakesChannelsFromLastDimension()
    {
        var images = WriteFile("img4", BuildIdx(0x08, [2, 2, 2, 3], new byte[24]));
        var labels = WriteFile("lbl4", BuildIdx(0x08, [2], [1, 0]));
        var set = IdxImageSet.Load(images, labels);
        Assert.Equal(3, set.Channels);
        Assert.Equal(12, set.PixelsPerImage);
    }

    [Fact]
    public void Load_CountMismatch_ThrowsNamingBothFiles()
    {
        var images = WriteFile("img", BuildIdx(0x08, [3, 2, 2], new byte[12]));
        var labels = WriteFile("lbl", BuildIdx(0x08, [2], [0, 1]));

        var ex = Assert.Throws<InvalidDataException>(() => IdxImageSet.Load(images, labels));

        Assert.Contains("3 images", ex.Message, StringComparison.Ordinal);
        Assert.Contains("2 labels", ex.Message, StringComparison.Ordinal);
        Assert.Contains(labels, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FindSplit_PlainAndGzipNames_FindsBoth()
    {
        WriteFile("train-images-idx3-ubyte", BuildIdx(0x08, [1, 1, 1], [7]));
        WriteFile("train-labels-idx1-ubyte.gz", Gzip(BuildIdx(0x08, [1], [3])));
        WriteFile("t10k-images-idx3-ubyte.gz", Gzip(BuildIdx(0x08, [2, 1, 1], [7, 8])));
        WriteFile("t10k-labels-idx1-ubyte", BuildIdx(0x08, [2], [1, 0]));

        var train = IdxImageSet.FindSplit(_dir, "train");
        var test = IdxImageSet.FindSplit(_dir, "test");
        var t10k = IdxImageSet.LoadSplit(_dir, "T10K");

        Assert.Equal(Path.Combine(_dir, "train-images-idx3-ubyte"), train.ImagesPath);
        Assert.Equal(Path.Combine(_dir, "train-labels-idx1-ubyte.gz"), train.LabelsPath);
        Assert.Equal(Path.Combine(_dir, "t10k-images-idx3-ubyte.gz"), test.ImagesPath);
        Assert.Equal(Path.Combine(_dir, "t10k-labels-idx1-ubyte"), test.LabelsPath);
        Assert.Equal(2, t10k.Count);
        Assert.Equal([1, 0], t10k.Labels);
    }

    [Fact]
    public void FindSplit_MissingFile_ListsSearchedNames()
    {
        WriteFile("train-images-idx3-ubyte", BuildIdx(0x08, [1, 1, 1], [7]));

        var ex = Assert.Throws<FileNotFoundException>(() => IdxImageSet.FindSplit(_dir, "train"));

        Assert.Contains("train-labels-idx1-ubyte'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("train-labels-idx1-ubyte.gz'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("dataset-fashion-mnist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FindSplit_UnknownSplitOrDirectory_Throws()
    {
        Assert.Throws<ArgumentException>(() => IdxImageSet.FindSplit(_dir, "validation"));
        Assert.Throws<DirectoryNotFoundException>(() => IdxImageSet.FindSplit(Path.Combine(_dir, "missing"), "train"));
    }
}
