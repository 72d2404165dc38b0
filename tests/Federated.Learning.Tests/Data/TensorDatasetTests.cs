using Federated.Learning.Data;
using TorchSharp;

namespace Federated.Learning.Tests.Data;

public sealed class TensorDatasetTests
{
    [Fact]
    public void Materialize_AppliesNormalisationAndKeepsLabels()
    {
        float[] features = [0f, 1f, 0.5f, 0.5f];
        using var data = TensorDataset.Materialize(new InMemorySource("t", features, [1, 0], [1, 2], 2), new Normalization([0.5f], [0.5f]), torch.CPU);

        Assert.Equal([-1f, 1f, 0f, 0f], data.Features.data<float>().ToArray());
        Assert.Equal([1L, 0L], data.LabelTensor.data<long>().ToArray());
        Assert.Equal([1L, 2L], data.SampleShape);
        Assert.Equal([1, 1], data.LabelHistogram());
    }

    [Fact]
    public void EpochBatches_Shuffled_VisitsEverySampleOnceInSeededOrder()
    {
        var features = Enumerable.Range(0, 10).Select(i => (float)i).ToArray();
        using var data = TensorDataset.Materialize(new InMemorySource("t", features, new int[10], [1], 1), Normalization.None, torch.CPU);

        List<float> Visit(ulong seed)
        {
            using var generator = new torch.Generator(seed);
            using var batches = new EpochBatches(data, 4, generator);
            var seen = new List<float>();
            for (var b = 0; b < batches.Count; b++)
            {
                var (inputs, targets) = batches.Get(b);
                Assert.Equal(inputs.shape[0], targets.shape[0]);
                seen.AddRange(inputs.data<float>().ToArray());
            }

            return seen;
        }

        var first = Visit(1);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (float)i), first.Order());
        Assert.Equal(first, Visit(1));
        Assert.NotEqual(first, Visit(2));
    }

    [Fact]
    public void EpochBatches_DropLast_SkipsPartialBatch()
    {
        using var data = TensorDataset.Materialize(new InMemorySource("t", new float[10], new int[10], [1], 1), Normalization.None, torch.CPU);

        using var kept = new EpochBatches(data, 4, null);
        using var dropped = new EpochBatches(data, 4, null, dropLast: true);

        Assert.Equal(3, kept.Count);
        Assert.Equal(2, dropped.Count);
        Assert.Equal(2, kept.Get(2).Inputs.shape[0]);
    }

    [Fact]
    public void Subset_PicksRowsAndLabels()
    {
        float[] features = [10, 11, 12, 13];
        using var data = TensorDataset.Materialize(new InMemorySource("t", features, [0, 1, 2, 3], [1], 4), Normalization.None, torch.CPU);

        using var subset = data.Subset([3, 1]);

        Assert.Equal([13f, 11f], subset.Features.data<float>().ToArray());
        Assert.Equal([3, 1], subset.Labels.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Subset([4]));
    }

    [Fact]
    public void NormalizationEstimate_MatchesMeanAndStd()
    {
        var source = new InMemorySource("t", [0f, 2f, 4f, 6f], [0, 0], [1, 2], 1);

        var normalization = Normalization.Estimate(source);

        Assert.Equal(3f, normalization.Mean[0], 5);
        Assert.Equal((float)Math.Sqrt(5), normalization.Std[0], 5);
    }
}
