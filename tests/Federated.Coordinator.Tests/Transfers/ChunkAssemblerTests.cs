using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;

namespace Federated.Coordinator.Tests.Transfers;

public sealed class ChunkAssemblerTests
{
    private static SealedPayload Payload(int floats, int chunkBytes)
    {
        var payload = new Payload { LayoutFingerprint = "f" };
        PayloadCodec.AddDense(payload, "model", Enumerable.Range(0, floats).Select(i => (float)i).ToArray());
        return new SealedPayload("t", payload, chunkBytes);
    }

    [Fact]
    public void Accept_AllChunksInOrder_RebuildsThePayload()
    {
        var sealedPayload = Payload(10_000, 4096);
        var assembler = new ChunkAssembler("t", sealedPayload.Bytes.Length, sealedPayload.ChunkCount, sealedPayload.Sha256, long.MaxValue);

        for (var i = 0; i < sealedPayload.ChunkCount; i++)
        {
            Assert.Equal(i == sealedPayload.ChunkCount - 1, assembler.Accept(sealedPayload.GetChunk(i)));
        }

        Assert.Equal(sealedPayload.Bytes, assembler.Bytes);
        Assert.Equal(Enumerable.Range(0, 10_000).Select(i => (float)i), PayloadCodec.ReadDense(PayloadCodec.Parse(assembler.Bytes, "f"), "model"));
    }

    [Theory]
    [InlineData(100_000, 4096)] // 400 kB in 98 chunks: the buffer grows several times
    [InlineData(100_000, 1 << 20)] // one chunk larger than the initial buffer
    public void Accept_PayloadLargerThanTheInitialBuffer_RebuildsItExactly(int floats, int chunkBytes)
    {
        var sealedPayload = Payload(floats, chunkBytes);
        var assembler = new ChunkAssembler("t", sealedPayload.Bytes.Length, sealedPayload.ChunkCount, sealedPayload.Sha256, long.MaxValue);

        for (var i = 0; i < sealedPayload.ChunkCount; i++)
        {
            assembler.Accept(sealedPayload.GetChunk(i));
        }

        Assert.Equal(sealedPayload.Bytes, assembler.Bytes);
    }

    [Fact]
    public void Constructor_HugeDeclaredSize_AllocatesOnlyWhatArrives()
    {
        // A header may declare up to the limit (1 GiB by default) and then send a kilobyte: the coordinator must not
        // reserve the declared size up front (the fuzz campaign found it did: 1 GiB per forged header).
        var data = new byte[1024];
        var before = GC.GetAllocatedBytesForCurrentThread();
        var assembler = new ChunkAssembler("t", 1L << 30, 4, new byte[32], 1L << 30);
        assembler.Accept(new Chunk { TransferId = "t", Sequence = 0, Data = Google.Protobuf.ByteString.CopyFrom(data), Crc32C = Crc32C.Compute(data) });
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(1, assembler.NextSequence);
        Assert.True(allocated < 1 << 20, $"{allocated:N0} bytes allocated for a 1 GiB header and one 1 kB chunk");
    }

    [Fact]
    public void Accept_ResentChunk_IsIgnored_OutOfOrder_IsRejected()
    {
        var sealedPayload = Payload(5_000, 4096);
        var assembler = new ChunkAssembler("t", sealedPayload.Bytes.Length, sealedPayload.ChunkCount, sealedPayload.Sha256, long.MaxValue);
        assembler.Accept(sealedPayload.GetChunk(0));
        assembler.Accept(sealedPayload.GetChunk(1));

        assembler.Accept(sealedPayload.GetChunk(1));
        var error = Assert.Throws<TransferException>(() => assembler.Accept(sealedPayload.GetChunk(3)));

        Assert.Equal(2, assembler.NextSequence);
        Assert.Equal(StatusCode.OutOfRange, error.Code);
    }

    [Fact]
    public void Accept_WrongSha256_FailsAtTheEndAndRestarts()
    {
        var sealedPayload = Payload(2_000, 4096);
        var wrong = (byte[])sealedPayload.Sha256.Clone();
        wrong[0] ^= 1;
        var assembler = new ChunkAssembler("t", sealedPayload.Bytes.Length, sealedPayload.ChunkCount, wrong, long.MaxValue);
        for (var i = 0; i < sealedPayload.ChunkCount - 1; i++)
        {
            assembler.Accept(sealedPayload.GetChunk(i));
        }

        var error = Assert.Throws<TransferException>(() => assembler.Accept(sealedPayload.GetChunk(sealedPayload.ChunkCount - 1)));

        Assert.Equal(StatusCode.DataLoss, error.Code);
        Assert.Equal(0, assembler.NextSequence);
        Assert.False(assembler.IsComplete);
    }

    [Fact]
    public void Parse_WrongFingerprint_IsFailedPrecondition()
    {
        var sealedPayload = Payload(10, 4096);

        var error = Assert.Throws<TransferException>(() => PayloadCodec.Parse(sealedPayload.Bytes, "other"));

        Assert.Equal(StatusCode.FailedPrecondition, error.Code);
        Assert.Contains("layout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DataShorterThanShape_IsInvalidArgument()
    {
        var payload = new Payload { LayoutFingerprint = "f" };
        payload.Tensors.Add(new NamedTensor { Name = "model", Encoding = TensorEncoding.DenseF32, Shape = { 4 }, Data = Google.Protobuf.ByteString.CopyFrom(new byte[12]) });

        var error = Assert.Throws<TransferException>(() => PayloadCodec.Parse(Google.Protobuf.MessageExtensions.ToByteArray(payload), "f"));

        Assert.Contains("declares 4 floats", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Crc32C_KnownVector()
    {
        // RFC 3720 test vector: 32 bytes of zeros → 0x8A9136AA.
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }
}
