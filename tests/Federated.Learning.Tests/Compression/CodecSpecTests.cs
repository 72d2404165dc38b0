using Federated.Learning.Compression;

namespace Federated.Learning.Tests.Compression;

public sealed class CodecSpecTests
{
    [Theory]
    [InlineData("f32", "f32", CodecId.Uncompressed, true)]
    [InlineData(" FP16 ", "fp16", CodecId.Float16, false)]
    [InlineData("bf16", "bf16", CodecId.BFloat16, false)]
    [InlineData("q8", "q8:block=512", CodecId.Quantized, true)]
    [InlineData("q2:block=128", "q2:block=128", CodecId.Quantized, true)]
    [InlineData("sign", "sign", CodecId.Sign, false)]
    [InlineData("sign:block=4096", "sign:block=4096", CodecId.Sign, false)]
    [InlineData("topk:ratio=0.01", "topk:ratio=0.01+f32", CodecId.Sparse, false)]
    [InlineData("topk:ratio=0.01+q8", "topk:ratio=0.01+q8:block=512", CodecId.Sparse, false)]
    [InlineData("randk:ratio=0.1", "randk:ratio=0.1,seeded=true,scaled=true+f32", CodecId.Sparse, true)]
    [InlineData("randk:ratio=0.1,scaled=false+q4", "randk:ratio=0.1,seeded=true,scaled=false+q4:block=512", CodecId.Sparse, false)]
    [InlineData("randk:ratio=0.1+fp16", "randk:ratio=0.1,seeded=true,scaled=true+fp16", CodecId.Sparse, false)]
    public void Parse_ValidSpec_BuildsTheCodec(string spec, string canonical, CodecId id, bool unbiased)
    {
        var codec = DeltaCodecs.Parse(spec);

        Assert.Equal(canonical, codec.Spec);
        Assert.Equal(id, codec.Id);
        Assert.Equal(unbiased, codec.IsUnbiased);
    }

    [Theory]
    [InlineData("", "empty stage")]
    [InlineData("zip", "unknown codec 'zip' (known: f32, fp16, bf16, q8, q4, q2, sign, topk, randk)")]
    [InlineData("q3", "unknown codec 'q3'")]
    [InlineData("q8:block=0", "'q8' block must be an integer from 1 to 16777216, not '0'")]
    [InlineData("q8:block=abc", "not 'abc'")]
    [InlineData("q8:bits=4", "'q8' has no parameter 'bits' (it takes block)")]
    [InlineData("fp16:block=4", "'fp16' has no parameter 'block' (it takes none)")]
    [InlineData("q8:block", "parameter 'block' is not key=value")]
    [InlineData("q8:block=8,block=16", "sets 'block' twice")]
    [InlineData("topk", "'topk' needs ratio=R")]
    [InlineData("topk:ratio=0", "ratio must be a number in (0, 1], not '0'")]
    [InlineData("topk:ratio=1.5", "not '1.5'")]
    [InlineData("randk:ratio=0.1,seeded=maybe", "seeded must be true or false, not 'maybe'")]
    [InlineData("fp16+q8", "'fp16' takes no inner codec")]
    [InlineData("topk:ratio=0.1+randk:ratio=0.5", "not another sparse one")]
    [InlineData("topk:ratio=0.1+q8+fp16", "more than two stages")]
    [InlineData("topk:ratio=0.1+", "empty stage")]
    public void Parse_InvalidSpec_ThrowsArgumentExceptionThatSaysWhy(string spec, string message)
    {
        var error = Assert.Throws<ArgumentException>(() => DeltaCodecs.Parse(spec));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"Invalid codec spec '{spec}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Factories_RejectOutOfRangeParameters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DeltaCodecs.Quantized(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeltaCodecs.Quantized(8, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeltaCodecs.TopK(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeltaCodecs.Sign(-1));
        Assert.Throws<ArgumentException>(() => DeltaCodecs.TopK(0.1, DeltaCodecs.TopK(0.5)));
    }
}
