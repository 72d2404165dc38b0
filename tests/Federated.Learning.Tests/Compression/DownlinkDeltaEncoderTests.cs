using System.Buffers;
using Federated.Learning.Compression;

namespace Federated.Learning.Tests.Compression;

public sealed class DownlinkDeltaEncoderTests
{
    [Theory]
    [InlineData("q4:block=64")]
    [InlineData("topk:ratio=0.05+q8")]
    [InlineData("sign:block=32")]
    public void EncodeDelta_AgentAndTrackedReplica_StayBitIdentical_AndFollowTheGlobalModel(string spec)
    {
        const int n = 3000;
        var encoder = new DownlinkDeltaEncoder(DeltaCodecs.Parse(spec));
        var random = new CodecRandom(3);
        var global = CodecTestKit.Delta(n, 51, sigma: 0.1);
        var agent = new float[n];
        var replica = new float[n];

        // First contact: the full model, lossily.
        var full = new ArrayBufferWriter<byte>();
        encoder.EncodeFull(global, replica, full, random);
        DownlinkDeltaEncoder.ApplyFull(full.WrittenSpan, agent);
        Assert.Equal(replica, agent);

        double firstError = 0;
        for (var round = 0; round < 60; round++)
        {
            var step = CodecTestKit.Delta(n, 200 + (ulong)round, sigma: 1e-3);
            for (var i = 0; i < n; i++)
            {
                global[i] += step[i];
            }

            var wire = new ArrayBufferWriter<byte>();
            encoder.EncodeDelta(global, replica, wire, random);
            DownlinkDeltaEncoder.ApplyDelta(wire.WrittenSpan, agent);

            Assert.Equal(replica, agent);
            if (round == 0)
            {
                firstError = Distance(global, agent);
            }
        }

        // No drift: what a round drops is in the next round's delta, so the agent stays near the global model.
        var lastError = Distance(global, agent);
        Assert.True(lastError < Math.Max(firstError, 0.05 * Norm(global)), $"{spec}: error {firstError} after the first round, {lastError} after the last");
    }

    [Fact]
    public void EncodeDelta_Lossless_AgentEqualsGlobalEveryRound()
    {
        var encoder = new DownlinkDeltaEncoder(DeltaCodecs.Uncompressed);
        var global = CodecTestKit.Delta(100, 52);
        var replica = new float[100];
        var agent = new float[100];

        var wire = new ArrayBufferWriter<byte>();
        encoder.EncodeDelta(global, replica, wire, new CodecRandom(1));
        DownlinkDeltaEncoder.ApplyDelta(wire.WrittenSpan, agent);

        Assert.Equal(global, agent);
        Assert.Equal(global, replica);
    }

    private static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());

    private static double Norm(float[] a) => Math.Sqrt(a.Sum(x => (double)x * x));
}
