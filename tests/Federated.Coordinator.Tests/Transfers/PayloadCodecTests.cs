using Federated.Coordinator.Rounds;
using Federated.Learning.Compression;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;

namespace Federated.Coordinator.Tests.Transfers;

/// <summary>Codec-encoded tensors in payloads: round trip, strict checks, and the coordinator's decoding of them.</summary>
public sealed class PayloadCodecTests
{
    private static float[] Vector(int n) => Enumerable.Range(0, n).Select(i => MathF.Sin(i) * 0.01f).ToArray();

    private static byte[] Serialize(Payload payload) => payload.ToByteArray();

    [Fact]
    public void AddEncoded_ParseAndDecode_RoundTrips()
    {
        var values = Vector(1000);
        var encoded = DeltaCodecs.Parse("q8").EncodeToArray(values, new CodecRandom(1));
        var payload = new Payload { LayoutFingerprint = "abc" };
        PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, encoded, values.Length);
        PayloadCodec.AddDense(payload, "extra", [1f, 2f]);

        var parsed = PayloadCodec.Parse(Serialize(payload), "abc");
        var tensor = PayloadCodec.GetTensor(parsed, PayloadCodec.ModelTensor, values.Length);
        var decoded = RoundCompression.ReadDelta(parsed, values.Length);

        Assert.Equal(TensorEncoding.Codec, tensor.Encoding);
        Assert.Equal([1000L], tensor.Shape);
        Assert.Equal(encoded, tensor.Data.ToByteArray());
        var scale = values.Max(MathF.Abs);
        Assert.All(values.Zip(decoded), p => Assert.InRange(p.Second, p.First - scale / 127, p.First + scale / 127));
        Assert.Equal([1f, 2f], PayloadCodec.ReadAllDense(parsed, PayloadCodec.ModelTensor)["extra"]);
    }

    [Fact]
    public void ReadDelta_DenseTensor_IsReadAsBefore()
    {
        var payload = new Payload();
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, [1f, -2f, 3f]);

        Assert.Equal([1f, -2f, 3f], RoundCompression.ReadDelta(PayloadCodec.Parse(Serialize(payload), null), 3));
    }

    [Fact]
    public void Parse_CodecHeaderDisagreesWithTheShape_IsRejected()
    {
        var encoded = DeltaCodecs.Uncompressed.EncodeToArray(Vector(12), new CodecRandom(1));
        var payload = new Payload();
        payload.Tensors.Add(new NamedTensor { Name = "model", Encoding = TensorEncoding.Codec, Shape = { 10 }, Data = ByteString.CopyFrom(encoded) });

        var e = Assert.Throws<TransferException>(() => PayloadCodec.Parse(Serialize(payload), null));

        Assert.Contains("declares 10 floats but its codec header says 12", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CodecTensorShorterThanItsHeader_IsRejected()
    {
        var payload = new Payload();
        payload.Tensors.Add(new NamedTensor { Name = "model", Encoding = TensorEncoding.Codec, Shape = { 4 }, Data = ByteString.CopyFrom(1, 1, 4) });

        var e = Assert.Throws<TransferException>(() => PayloadCodec.Parse(Serialize(payload), null));

        Assert.Contains("fewer than the 6-byte codec header", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownEncoding_IsStillRejected()
    {
        var payload = new Payload();
        payload.Tensors.Add(new NamedTensor { Name = "model", Encoding = (TensorEncoding)7, Shape = { 1 }, Data = ByteString.CopyFrom(0, 0, 0, 0) });

        Assert.Throws<TransferException>(() => PayloadCodec.Parse(Serialize(payload), null));
    }

    [Fact]
    public void ReadDense_OfACodecTensor_IsRefused()
    {
        var payload = new Payload();
        PayloadCodec.AddEncoded(payload, "model", DeltaCodecs.Uncompressed.EncodeToArray(Vector(8), new CodecRandom(1)), 8);
        PayloadCodec.AddEncoded(payload, "control", DeltaCodecs.Uncompressed.EncodeToArray(Vector(8), new CodecRandom(1)), 8);

        Assert.Throws<TransferException>(() => PayloadCodec.ReadDense(payload, "model"));
        Assert.Throws<TransferException>(() => PayloadCodec.ReadAllDense(payload, "model"));
    }

    [Fact]
    public void AddEncoded_CountThatIsNotTheHeaders_IsRefused()
    {
        var encoded = DeltaCodecs.Uncompressed.EncodeToArray(Vector(8), new CodecRandom(1));

        Assert.Throws<ArgumentException>(() => PayloadCodec.AddEncoded(new Payload(), "model", encoded, 9));
        Assert.Throws<ArgumentException>(() => PayloadCodec.AddEncoded(new Payload(), "model", encoded.AsSpan(0, 3), 8));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("nan-scale")]
    [InlineData("unknown-codec")]
    public void ReadDelta_MalformedCodecBody_IsATransferException(string damage)
    {
        var encoded = DeltaCodecs.Parse("q8:block=64").EncodeToArray(Vector(256), new CodecRandom(1));
        switch (damage)
        {
            case "truncated":
                encoded = encoded[..^5];
                break;
            case "nan-scale":
                BitConverter.TryWriteBytes(encoded.AsSpan(CodecHeader.Size + 5), float.NaN); // first block's scale, after bits:u8 block:u32
                break;
            default:
                encoded[0] = 99;
                break;
        }

        var payload = new Payload();
        PayloadCodec.AddEncoded(payload, "model", encoded, 256);
        var parsed = PayloadCodec.Parse(Serialize(payload), null);

        var e = Assert.Throws<TransferException>(() => RoundCompression.ReadDelta(parsed, 256));

        Assert.Contains("malformed codec payload", e.Message, StringComparison.Ordinal);
    }
}
