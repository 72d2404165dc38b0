using System.Buffers;
using Federated.Learning.Compression;

namespace Federated.Learning.Tests.Compression;

public sealed class ErrorFeedbackTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ef-tests-" + Guid.NewGuid().ToString("N"));

    public ErrorFeedbackTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Encode_TopK_ResidualIsExactlyTheDroppedPart()
    {
        var delta = CodecTestKit.Delta(1000, 41);
        var feedback = new ErrorFeedback(delta.Length);
        var writer = new ArrayBufferWriter<byte>();

        feedback.Encode(DeltaCodecs.TopK(0.05), delta, writer, new CodecRandom(1));
        var sent = CodecTestKit.Decode(writer.WrittenSpan.ToArray(), delta.Length);

        for (var i = 0; i < delta.Length; i++)
        {
            Assert.Equal(sent[i] == 0 ? delta[i] : 0f, feedback.Residual[i]);
        }

        Assert.Equal(50, sent.Count(v => v != 0));
    }

    [Theory]
    [InlineData("topk:ratio=0.01+q8")]
    [InlineData("sign")]
    [InlineData("q2:block=64")]
    [InlineData("randk:ratio=0.1,scaled=false")]
    public void Encode_OverManyRounds_SentPlusResidualEqualsTheSumOfDeltas(string spec)
    {
        const int n = 2000;
        var codec = DeltaCodecs.Parse(spec);
        var feedback = new ErrorFeedback(n);
        var random = new CodecRandom(5);
        var sumIn = new double[n];
        var sumSent = new float[n];
        for (var round = 0; round < 30; round++)
        {
            var delta = CodecTestKit.Delta(n, 100 + (ulong)round);
            var writer = new ArrayBufferWriter<byte>();
            feedback.Encode(codec, delta, writer, random);
            DeltaCodecs.DecodeAdd(writer.WrittenSpan, 1f, sumSent);
            for (var i = 0; i < n; i++)
            {
                sumIn[i] += delta[i];
            }
        }

        for (var i = 0; i < n; i++)
        {
            Assert.True(Math.Abs(sumSent[i] + feedback.Residual[i] - sumIn[i]) <= 1e-5, $"{spec}, element {i}: sent {sumSent[i]} + residual {feedback.Residual[i]} vs {sumIn[i]}");
        }
    }

    [Fact]
    public void SaveLoad_File_RoundTripsExactly()
    {
        var feedback = new ErrorFeedback(500);
        feedback.Encode(DeltaCodecs.TopK(0.1), CodecTestKit.Delta(500, 42), new ArrayBufferWriter<byte>(), new CodecRandom(1));
        var path = Path.Combine(_dir, "residual.safetensors");

        feedback.Save(path);
        var loaded = ErrorFeedback.Load(path, 500);

        Assert.Equal(feedback.Residual.ToArray(), loaded.Residual.ToArray());
        Assert.NotEqual(0, loaded.ResidualNorm);
    }

    [Fact]
    public void SaveLoad_Stream_RoundTripsExactly()
    {
        var feedback = new ErrorFeedback(64);
        feedback.Encode(DeltaCodecs.Sign(), CodecTestKit.Delta(64, 43), new ArrayBufferWriter<byte>(), new CodecRandom(1));
        using var stream = new MemoryStream();

        feedback.Save(stream);
        stream.Position = 0;

        Assert.Equal(feedback.Residual.ToArray(), ErrorFeedback.Load(stream, 64).Residual.ToArray());
    }

    [Fact]
    public void Load_WrongLength_IsRejected()
    {
        var path = Path.Combine(_dir, "residual.safetensors");
        new ErrorFeedback(10).Save(path);

        var error = Assert.Throws<InvalidDataException>(() => ErrorFeedback.Load(path, 11));
        Assert.Contains("holds a residual of 10 floats; this model's deltas have 11", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_OtherSafetensorsFile_IsRejected()
    {
        var path = Path.Combine(_dir, "model.safetensors");
        Federated.Learning.Checkpoints.SafeTensorsFile.Write(path, [Federated.Learning.Checkpoints.SafeTensor.FromSingles("residual", [2], [1f, 2f])]);

        var error = Assert.Throws<InvalidDataException>(() => ErrorFeedback.Load(path, 2));
        Assert.Contains("is not an error-feedback residual", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encode_NonFiniteOrWrongLengthDelta_Throws_AndKeepsTheResidual()
    {
        var feedback = new ErrorFeedback(4);
        feedback.Encode(DeltaCodecs.TopK(0.25), [1f, 2f, 3f, 4f], new ArrayBufferWriter<byte>(), new CodecRandom(1));
        var before = feedback.Residual.ToArray();

        Assert.Throws<ArgumentException>(() => feedback.Encode(DeltaCodecs.TopK(0.25), [1f, float.NaN, 3f, 4f], new ArrayBufferWriter<byte>(), new CodecRandom(1)));
        Assert.Throws<ArgumentException>(() => feedback.Encode(DeltaCodecs.TopK(0.25), [1f, 2f], new ArrayBufferWriter<byte>(), new CodecRandom(1)));

        Assert.Equal(before, feedback.Residual.ToArray());
        Assert.Equal([1f, 2f, 3f, 0f], before);
    }
}
