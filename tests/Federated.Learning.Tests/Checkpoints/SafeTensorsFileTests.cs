using System.Buffers.Binary;
using System.Text;
using Federated.Learning.Checkpoints;
using Xunit;

namespace Federated.Learning.Tests.Checkpoints;

public sealed class SafeTensorsFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "st-tests-" + Guid.NewGuid().ToString("N"));

    public SafeTensorsFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>An 8-byte length, the header text as given (no padding added), then the data.</summary>
    private static byte[] Build(string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    private static SafeTensorsContent ReadBytes(byte[] bytes) => SafeTensorsFile.Read(new MemoryStream(bytes), "t.safetensors");

    [Fact]
    public void Write_TinyFile_MatchesGoldenBytes()
    {
        // What safetensors.torch.save_file({"a": torch.tensor([1.0, 2.0])}, metadata={"format": "pt"}) writes.
        const string header = """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";
        Assert.Equal(85, header.Length);
        byte[] expected =
        [
            88, 0, 0, 0, 0, 0, 0, 0,              // header length 88 = 85 rounded up to a multiple of 8
            .. Encoding.ASCII.GetBytes(header), 0x20, 0x20, 0x20, // space padding
            0x00, 0x00, 0x80, 0x3F,               // 1.0f little-endian
            0x00, 0x00, 0x00, 0x40,               // 2.0f little-endian
        ];

        using var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, [SafeTensor.FromSingles("a", [2], [1f, 2f])], new Dictionary<string, string> { ["format"] = "pt" });

        Assert.Equal(expected, stream.ToArray());
        var back = ReadBytes(expected);
        Assert.Equal([1f, 2f], back["a"].ToSingles());
        Assert.Equal("pt", back.Metadata["format"]);
    }

    [Fact]
    public void WriteRead_SeveralTensorsAndMetadata_RoundTrip()
    {
        var weights = Enumerable.Range(0, 24).Select(i => (i * 0.5f) - 3f).ToArray();
        var path = Path.Combine(_dir, "model.safetensors");
        SafeTensor[] tensors =
        [
            SafeTensor.FromSingles("conv1.weight", [2, 3, 4], weights),
            SafeTensor.FromInt64("bn.num_batches_tracked", [], [123456789012L]),
            SafeTensor.FromDoubles("d", [2], [Math.E, -0.0]),
            SafeTensor.FromInt32("i", [3], [-1, 0, int.MaxValue]),
            SafeTensor.FromBytes("mask", [0], []),
            new SafeTensor("h", SafeTensorDType.F16, [2], new byte[] { 0x00, 0x3C, 0x00, 0xC0 }), // 1.0, -2.0
            new SafeTensor("bf", SafeTensorDType.BF16, [1], new byte[] { 0x80, 0x3F }), // 1.0
        ];
        var metadata = new Dictionary<string, string> { ["round"] = "17", ["model"] = "cnn \"v2\" ü" };

        SafeTensorsFile.Write(path, tensors, metadata);
        var content = SafeTensorsFile.Read(path);

        Assert.Equal(tensors.Select(t => t.Name), content.Tensors.Select(t => t.Name));
        Assert.Equal(metadata, content.Metadata);
        Assert.Equal(weights, content["conv1.weight"].ToSingles());
        Assert.Equal([2L, 3, 4], content["conv1.weight"].Shape);
        Assert.Equal([123456789012L], content["bn.num_batches_tracked"].ToInt64());
        Assert.Empty(content["bn.num_batches_tracked"].Shape);
        Assert.Equal([(float)Math.E, -0f], content["d"].ToSingles());
        Assert.Equal([-1L, 0, int.MaxValue], content["i"].ToInt64());
        Assert.Equal(0, content["mask"].ElementCount);
        Assert.Equal([1f, -2f], content["h"].ToSingles());
        Assert.Equal([1f], content["bf"].ToSingles());
        Assert.True(content.TryGet("i", out var found));
        Assert.Equal(SafeTensorDType.I32, found.DType);
        Assert.False(content.TryGet("nope", out _));
        Assert.Throws<KeyNotFoundException>(() => content["nope"]);
        Assert.Throws<InvalidOperationException>(() => content["i"].ToSingles());
        Assert.Throws<InvalidOperationException>(() => content["d"].ToInt64());

        var bytes = File.ReadAllBytes(path);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
    }

    [Fact]
    public void Write_ToPath_IsAtomicAndLeavesNoTempFile()
    {
        var path = Path.Combine(_dir, "ckpt.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromSingles("w", [1], [1f])]);
        SafeTensorsFile.Write(path, [SafeTensor.FromSingles("w", [1], [2f])]);

        Assert.Equal([2f], SafeTensorsFile.Read(path)["w"].ToSingles());
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void Write_FailingWrite_KeepsOldFileAndLeavesNoTempFile()
    {
        var path = Path.Combine(_dir, "ckpt.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromSingles("w", [1], [1f])]);

        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(path, [SafeTensor.FromSingles("w", [1], [2f]), SafeTensor.FromSingles("w", [1], [3f])]));

        Assert.Equal([1f], SafeTensorsFile.Read(path)["w"].ToSingles());
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void SafeTensor_InvalidConstruction_Throws()
    {
        Assert.Throws<ArgumentException>(() => SafeTensor.FromSingles("", [1], [1f]));
        Assert.Throws<ArgumentException>(() => SafeTensor.FromSingles("x", [3], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => new SafeTensor("x", SafeTensorDType.F32, [-1], Array.Empty<byte>()));
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(new MemoryStream(), [SafeTensor.FromSingles("__metadata__", [1], [1f])]));
    }

    public static TheoryData<string, string> MalformedHeaders => new()
    {
        { """{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}""", "unknown dtype 'F31'" },
        { """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "negative 'shape'" },
        { """{"a":{"dtype":"F32","shape":[1]}}""", "no 'data_offsets'" },
        { """{"a":{"shape":[1],"data_offsets":[0,4]}}""", "no 'dtype'" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}""", "exactly 2" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", "exactly 2" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}}""", "not an integer" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}""", "not an integer" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", "end is before its begin" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", "needs 8" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "gap of 4 byte(s)" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "overlaps" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "data buffer holds only 4 bytes" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "'a' more than once" },
        { """{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "not a string" },
        { """{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "'k' appears more than once" },
        { """[1,2]""", "not a JSON object" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}""", "not valid UTF-8 JSON" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} {}""", "not valid UTF-8 JSON" },
        { """{"a":5}""", "tensor 'a' is not a JSON object" },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void Read_MalformedHeader_ThrowsInvalidData(string header, string expected)
    {
        var bytes = Build(header, [0, 0, 0x80, 0x3F]);
        var ex = Assert.Throws<InvalidDataException>(() => ReadBytes(bytes));
        Assert.Contains("'t.safetensors' is not a valid safetensors file", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_InvalidUtf8Header_ThrowsInvalidData()
    {
        var bytes = Build("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", [0, 0, 0x80, 0x3F]);
        bytes[10] = 0xFF; // inside the name "a"
        var ex = Assert.Throws<InvalidDataException>(() => ReadBytes(bytes));
        Assert.Contains("UTF-8", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_FileShorterThanEightBytes_Throws()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ReadBytes([1, 2, 3]));
        Assert.Contains("shorter than the 8-byte header length", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_HeaderLengthBeyondFileOrLimit_Throws()
    {
        var bytes = Build("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        Assert.Contains("larger than the 2 bytes", Assert.Throws<InvalidDataException>(() => ReadBytes(bytes)).Message, StringComparison.Ordinal);

        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        Assert.Contains("limit", Assert.Throws<InvalidDataException>(() => ReadBytes(bytes)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_TrailingGarbage_Throws()
    {
        var bytes = Build("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", [1, 2, 3]);
        var ex = Assert.Throws<InvalidDataException>(() => ReadBytes(bytes));
        Assert.Contains("1 byte(s) of trailing data", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_UnorderedOffsetsAndUnknownFields_AreAccepted()
    {
        // Reference writers sort data by dtype alignment, so header order need not match data order.
        var bytes = Build(
            """{"b":{"dtype":"U8","shape":[1],"data_offsets":[4,5],"extra":{"x":[1]}},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}   """,
            [0, 0, 0x80, 0x3F, 7]);
        var content = ReadBytes(bytes);
        Assert.Equal([1f], content["a"].ToSingles());
        Assert.Equal([7L], content["b"].ToInt64());
        Assert.Empty(content.Metadata);
    }

    [Fact]
    public void Read_MissingFile_ThrowsFileNotFound()
    {
        var path = Path.Combine(_dir, "none.safetensors");
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Read(path)).Message, StringComparison.Ordinal);
    }
}
