using Federated.Learning.Privacy;
using Federated.Learning.SecureAggregation;

namespace Federated.Learning.Tests.SecureAggregation;

public sealed class SecureAggregationPartsTests
{
    [Theory]
    [InlineData(100, 14)]
    [InlineData(100, 99)]
    [InlineData(12, 11)]
    public void NeighbourGraph_Create_IsRegularAndSymmetric(int agents, int degree)
    {
        var graph = NeighbourGraph.Create(agents, degree, new byte[32]);

        for (var u = 0; u < agents; u++)
        {
            Assert.Equal(degree, graph.Neighbours(u).Distinct().Count());
            Assert.DoesNotContain(u, graph.Neighbours(u));
            Assert.All(graph.Neighbours(u), v => Assert.True(graph.AreNeighbours(v, u)));
        }
    }

    [Fact]
    public void NeighbourGraph_OddSparseDegree_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NeighbourGraph.Create(100, 13, new byte[32]));
    }

    [Fact]
    public void NeighbourGraph_DefaultDegree_IsLogarithmic()
    {
        Assert.Equal(8, NeighbourGraph.DefaultDegree(10));
        Assert.Equal(14, NeighbourGraph.DefaultDegree(100));
        Assert.Equal(18, NeighbourGraph.DefaultDegree(500));
        Assert.Equal(2, NeighbourGraph.DefaultDegree(3));
    }

    [Fact]
    public void MaskExpansion_AddThenSubtract_RestoresVector()
    {
        var original = Enumerable.Range(0, 200_001).Select(i => (uint)(i * 2654435761u)).ToArray();
        var vector = (uint[])original.Clone();
        var seed = new byte[32];
        seed[3] = 9;

        MaskExpansion.Apply(vector, [new MaskTerm(seed, false)]);
        Assert.NotEqual(original, vector);
        MaskExpansion.Apply(vector, [new MaskTerm(seed, true)], parallelism: 1);

        Assert.Equal(original, vector);
    }

    [Fact]
    public void MaskExpansion_Prefix_DoesNotDependOnLength()
    {
        var seed = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var longer = new uint[(2 * MaskExpansion.SegmentLength) + 5];
        var shorter = new uint[MaskExpansion.SegmentLength + 3];

        MaskExpansion.Apply(longer, [new MaskTerm(seed, false)]);
        MaskExpansion.Apply(shorter, [new MaskTerm(seed, false)], parallelism: 1);

        Assert.Equal(shorter, longer.Take(shorter.Length));
        Assert.NotEqual(longer.AsSpan(0, 1000).ToArray(), longer.AsSpan(MaskExpansion.SegmentLength, 1000).ToArray());
    }

    [Fact]
    public void MaskExpansion_SmallRing_ReducesModulo()
    {
        var vector = new uint[1000];

        MaskExpansion.Apply(vector, [new MaskTerm(new byte[32], false)], ringBits: 12);

        Assert.All(vector, v => Assert.True(v < 4096));
        Assert.Contains(vector, v => v >= 2048);
    }

    [Fact]
    public void RingQuantizer_SumOfMaxAgentsAtTheTop_DoesNotWrap()
    {
        var quantizer = new RingQuantizer(16, 1.0, 100);
        var top = new uint[1];
        quantizer.Quantize([5f], top, rounding: null);

        Assert.Equal(quantizer.Levels, top[0]);
        Assert.True((ulong)top[0] * 100 <= 65535);
        var sum = new float[1];
        quantizer.Dequantize([top[0] * 100], 100, sum);
        Assert.Equal(100f, sum[0], 3);
    }

    [Fact]
    public void RingQuantizer_StochasticRounding_IsUnbiased()
    {
        var quantizer = new RingQuantizer(8, 1.0, 1);
        var values = Enumerable.Repeat(0.3f, 100_000).ToArray();
        var quantized = new uint[values.Length];

        quantizer.Quantize(values, quantized, ChaCha20Random.FromSeed("rounding"));
        var decoded = new float[values.Length];
        quantizer.Dequantize(quantized, 1, decoded);

        Assert.Equal(0.3, decoded.Average(), 3);
        Assert.True(quantized.Distinct().Count() == 2);
    }

    [Fact]
    public void RingQuantizer_RingTooSmallForAgents_Throws()
    {
        Assert.Throws<ArgumentException>(() => new RingQuantizer(4, 1.0, 100));
    }
}
