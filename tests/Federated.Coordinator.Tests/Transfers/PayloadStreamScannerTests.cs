using Federated.Learning.Compression;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;

namespace Federated.Coordinator.Tests.Transfers;

/// <summary>The incremental payload scanner: it finds a tensor's data in any chunking, and never trusts the framing.</summary>
public sealed class PayloadStreamScannerTests
{
    private static (byte[] Bytes, byte[] ModelData) SamplePayload()
    {
        var values = Enumerable.Range(0, 3000).Select(i => MathF.Cos(i) * 0.01f).ToArray();
        var encoded = DeltaCodecs.Parse("q8").EncodeToArray(values, new CodecRandom(2));
        var payload = new Payload { LayoutFingerprint = "layout-1" };
        PayloadCodec.AddDense(payload, "before", [1f, 2f, 3f]);
        PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, encoded, values.Length);
        PayloadCodec.AddDense(payload, "after", [4f]);
        payload.Metadata["k"] = "v";
        return (payload.ToByteArray(), encoded);
    }

    private static List<byte> Scan(byte[] bytes, IEnumerable<int> cuts, List<(string Name, TensorEncoding Encoding, long Length)>? seen = null)
    {
        var received = new List<byte>();
        var scanner = new PayloadStreamScanner(bytes.Length, (name, encoding, length) =>
        {
            seen?.Add((name, encoding, length));
            return name == PayloadCodec.ModelTensor ? segment => received.AddRange(segment.ToArray()) : null;
        });
        var start = 0;
        foreach (var cut in cuts.Append(bytes.Length))
        {
            scanner.Feed(bytes.AsMemory(start, cut - start));
            start = cut;
        }

        Assert.True(scanner.IsComplete);
        return received;
    }

    [Fact]
    public void Feed_AnyChunking_HandsOverExactlyTheSelectedTensorsData()
    {
        var (bytes, model) = SamplePayload();
        var random = new Random(7);
        for (var trial = 0; trial < 200; trial++)
        {
            // Cuts anywhere, including inside tags, varints and names, and one-byte chunks near the start.
            var cuts = Enumerable.Range(0, random.Next(0, 40)).Select(_ => random.Next(1, bytes.Length)).Concat(Enumerable.Range(1, trial % 20)).Distinct().Order();
            var seen = new List<(string, TensorEncoding, long)>();
            Assert.Equal(model, Scan(bytes, cuts, seen));
            Assert.Equal([("before", TensorEncoding.DenseF32, 12L), (PayloadCodec.ModelTensor, TensorEncoding.Codec, model.Length), ("after", TensorEncoding.DenseF32, 4L)], seen);
        }
    }

    [Fact]
    public void Feed_DataBeforeName_IsNotOffered()
    {
        // A conforming but unusual writer: data (field 4) first, then name and encoding.
        var tensor = new MemoryStream();
        var inner = new CodedOutputStream(tensor);
        inner.WriteTag(NamedTensor.DataFieldNumber, WireFormat.WireType.LengthDelimited);
        inner.WriteBytes(ByteString.CopyFrom(1, 2, 3));
        inner.WriteTag(NamedTensor.NameFieldNumber, WireFormat.WireType.LengthDelimited);
        inner.WriteString(PayloadCodec.ModelTensor);
        inner.WriteTag(NamedTensor.EncodingFieldNumber, WireFormat.WireType.Varint);
        inner.WriteEnum((int)TensorEncoding.Codec);
        inner.Flush();
        var outer = new MemoryStream();
        var writer = new CodedOutputStream(outer);
        writer.WriteTag(Payload.TensorsFieldNumber, WireFormat.WireType.LengthDelimited);
        writer.WriteBytes(ByteString.CopyFrom(tensor.ToArray()));
        writer.Flush();
        var bytes = outer.ToArray();

        Assert.Equal(PayloadCodec.ModelTensor, Payload.Parser.ParseFrom(bytes).Tensors[0].Name);
        Assert.Empty(Scan(bytes, [1, 2, 3]));
    }

    [Fact]
    public void Feed_LengthPastTheEnd_OrMoreBytesThanDeclared_Faults()
    {
        var (bytes, _) = SamplePayload();

        var shortDeclared = new PayloadStreamScanner(bytes.Length - 10, (_, _, _) => null);
        Assert.Throws<TransferException>(() => shortDeclared.Feed(bytes));

        // A tensor message that claims more bytes than the payload has left.
        byte[] lying = [0x12, 0xFF, 0x7F, 0x0A, 0x01, 0x61];
        var scanner = new PayloadStreamScanner(lying.Length, (_, _, _) => null);
        var error = Assert.Throws<TransferException>(() => scanner.Feed(lying));
        Assert.Contains("runs past", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => scanner.Feed(lying));

        // Truncated input is not complete.
        var truncated = new PayloadStreamScanner(bytes.Length, (_, _, _) => null);
        truncated.Feed(bytes.AsMemory(0, bytes.Length - 1));
        Assert.False(truncated.IsComplete);
    }

    [Fact]
    public void Feed_RandomBytes_OnlyEverFaultsWithTransferException()
    {
        var random = new Random(11);
        var (valid, _) = SamplePayload();
        for (var trial = 0; trial < 2000; trial++)
        {
            // Half pure noise, half a valid payload with a few bytes flipped.
            var bytes = trial % 2 == 0 ? new byte[random.Next(0, 300)] : (byte[])valid.Clone();
            if (trial % 2 == 0)
            {
                random.NextBytes(bytes);
            }
            else
            {
                for (var flips = 0; flips < 3; flips++)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }
            }

            long offered = 0;
            var scanner = new PayloadStreamScanner(bytes.Length, (_, _, length) =>
            {
                offered += length;
                return _ => { };
            });
            try
            {
                for (var start = 0; start < bytes.Length; start += 17)
                {
                    scanner.Feed(bytes.AsMemory(start, Math.Min(17, bytes.Length - start)));
                }
            }
            catch (TransferException)
            {
                // Rejected: fine.
            }

            Assert.InRange(offered, 0, bytes.Length);
        }
    }
}
