using Federated.Learning.Data.Partitioning;
using Xunit;

namespace Federated.Learning.Tests.Data;

public sealed class PartitionerTests
{
    private const int NumClasses = 10;

    /// <summary>6000 samples, 600 per class, in a shuffled but fixed order.</summary>
    private static int[] BalancedLabels(int perClass = 600)
    {
        var labels = new int[perClass * NumClasses];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = i % NumClasses;
        }

        new StableRandom(99).Shuffle<int>(labels);
        return labels;
    }

    public static TheoryData<string> AllSpecs => ["iid", "dirichlet:0.5", "dirichlet:0.1", "dirichlet-balanced:0.3", "shards:2", "quantity:0.5"];

    private static void AssertEverySampleOnce(Partition partition, int numSamples)
    {
        var seen = new bool[numSamples];
        foreach (var indices in partition.ClientIndices)
        {
            foreach (var index in indices)
            {
                Assert.False(seen[index], $"index {index} assigned twice");
                seen[index] = true;
            }
        }

        Assert.All(seen, Assert.True);
        Assert.Equal(0, partition.Unassigned);
    }

    [Theory]
    [MemberData(nameof(AllSpecs))]
    public void Split_AnyPartitioner_AssignsEverySampleOnceWithConsistentHistogram(string spec)
    {
        var labels = BalancedLabels();
        var partition = Partitioners.Parse(spec).Split(labels, NumClasses, 8, seed: 1);

        AssertEverySampleOnce(partition, labels.Length);
        Assert.Equal(8, partition.NumClients);
        for (var client = 0; client < partition.NumClients; client++)
        {
            var expected = new int[NumClasses];
            foreach (var index in partition.ClientIndices[client])
            {
                expected[labels[index]]++;
            }

            Assert.Equal(expected, partition.LabelHistogram[client]);
            Assert.Equal(partition.ClientIndices[client].Order(), partition.ClientIndices[client]);
        }
    }

    [Theory]
    [MemberData(nameof(AllSpecs))]
    public void Split_SameSeed_Identical_DifferentSeed_Differs(string spec)
    {
        var labels = BalancedLabels();
        var partitioner = Partitioners.Parse(spec);

        var a = partitioner.Split(labels, NumClasses, 8, seed: 5);
        var b = partitioner.Split(labels, NumClasses, 8, seed: 5);
        var c = partitioner.Split(labels, NumClasses, 8, seed: 6);

        Assert.Equal(a.ClientIndices, b.ClientIndices);
        Assert.NotEqual(a.ClientIndices, c.ClientIndices);
    }

    [Fact]
    public void Iid_SizesDifferByAtMostOne_AndLabelsNearGlobal()
    {
        var labels = BalancedLabels();
        var partition = new IidPartitioner().Split(labels, NumClasses, 7, seed: 3);

        var sizes = partition.ClientIndices.Select(c => c.Length).ToArray();
        Assert.True(sizes.Max() - sizes.Min() <= 1);
        Assert.True(MeanTotalVariation(partition) < 0.1);
    }

    [Fact]
    public void Dirichlet_SmallAlphaSkewed_LargeAlphaNearUniform()
    {
        var labels = BalancedLabels();
        var skewed = new DirichletPartitioner(0.1).Split(labels, NumClasses, 10, seed: 2);
        var uniform = new DirichletPartitioner(100).Split(labels, NumClasses, 10, seed: 2);

        var tvSkewed = MeanTotalVariation(skewed);
        var tvUniform = MeanTotalVariation(uniform);

        Assert.True(tvSkewed > 0.5, $"alpha=0.1 TV {tvSkewed}");
        Assert.True(tvUniform < 0.1, $"alpha=100 TV {tvUniform}");
        Assert.True(MeanMaxClassFraction(skewed) > 2 * MeanMaxClassFraction(uniform));
    }

    [Fact]
    public void BalancedDirichlet_EqualSizes_SkewedLabels_AtCrossDeviceScale()
    {
        // 1,000 clients of 60 from 60,000 samples: the scale scenario's shape.
        var labels = BalancedLabels(perClass: 6000);
        var skewed = new BalancedDirichletPartitioner(0.3).Split(labels, NumClasses, 1000, seed: 7);
        var mild = new BalancedDirichletPartitioner(100).Split(labels, NumClasses, 1000, seed: 7);

        AssertEverySampleOnce(skewed, labels.Length);
        Assert.All(skewed.ClientIndices, c => Assert.Equal(60, c.Length));
        Assert.True(MeanMaxClassFraction(skewed) > 0.45, $"alpha=0.3 mean max-class fraction {MeanMaxClassFraction(skewed)}");
        Assert.True(MeanMaxClassFraction(mild) < 0.3, $"alpha=100 mean max-class fraction {MeanMaxClassFraction(mild)}");
    }

    [Fact]
    public void BalancedDirichlet_UnevenTotal_SizesDifferByAtMostOne()
    {
        var labels = BalancedLabels()[..5999];
        var partition = new BalancedDirichletPartitioner(0.5).Split(labels, NumClasses, 7, seed: 1);

        AssertEverySampleOnce(partition, labels.Length);
        var sizes = partition.ClientIndices.Select(c => c.Length).ToArray();
        Assert.True(sizes.Max() - sizes.Min() <= 1);
    }

    [Fact]
    public void Dirichlet_MinSamples_Respected()
    {
        var labels = BalancedLabels();
        var partition = new DirichletPartitioner(0.1, minSamplesPerClient: 50).Split(labels, NumClasses, 20, seed: 4);
        Assert.All(partition.ClientIndices, c => Assert.True(c.Length >= 50));
        AssertEverySampleOnce(partition, labels.Length);
    }

    [Fact]
    public void Dirichlet_ImpossibleMinimum_ThrowsClearErrors()
    {
        var labels = BalancedLabels(10);
        var tooMany = Assert.Throws<ArgumentException>(() => new DirichletPartitioner(0.5, minSamplesPerClient: 20).Split(labels, NumClasses, 10, 1));
        Assert.Contains("at least 20 samples", tooMany.Message, StringComparison.Ordinal);

        var strict = Assert.Throws<InvalidOperationException>(() => new DirichletPartitioner(0.01, minSamplesPerClient: 9, maxRetries: 3).Split(labels, NumClasses, 10, 1));
        Assert.Contains("alpha=0.01", strict.Message, StringComparison.Ordinal);
        Assert.Contains("after 3 draws", strict.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 10)]
    [InlineData(2, 10)]
    [InlineData(3, 4)]
    [InlineData(2, 5)]
    [InlineData(10, 3)]
    public void Shards_EveryClientHasExactlyKLabels(int k, int clients)
    {
        var labels = BalancedLabels();
        var partition = new ShardPartitioner(k).Split(labels, NumClasses, clients, seed: 8);

        Assert.All(partition.LabelHistogram, h => Assert.Equal(k, h.Count(n => n > 0)));
        AssertEverySampleOnce(partition, labels.Length); // coverage is guaranteed when clients * k >= classes
    }

    [Fact]
    public void Shards_TooFewSlotsForAllLabels_ReportsUnassigned()
    {
        var labels = BalancedLabels();
        var partition = new ShardPartitioner(2).Split(labels, NumClasses, 3, seed: 8);

        Assert.All(partition.LabelHistogram, h => Assert.Equal(2, h.Count(n => n > 0)));
        var heldLabels = Enumerable.Range(0, NumClasses).Count(c => partition.LabelHistogram.Any(h => h[c] > 0));
        Assert.Equal(labels.Length - (heldLabels * 600), partition.Unassigned);
        Assert.True(partition.Unassigned >= 4 * 600);
        Assert.Contains("unassigned", partition.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Shards_LabelSamplesSplitEvenlyAmongHolders()
    {
        var labels = BalancedLabels();
        var partition = new ShardPartitioner(2).Split(labels, NumClasses, 10, seed: 1);
        for (var c = 0; c < NumClasses; c++)
        {
            var shares = partition.LabelHistogram.Select(h => h[c]).Where(n => n > 0).ToArray();
            Assert.True(shares.Max() - shares.Min() <= 1);
            Assert.Equal(600, shares.Sum());
        }
    }

    [Fact]
    public void QuantitySkew_SmallBetaUnequal_LargeBetaNearlyEqual()
    {
        var labels = BalancedLabels();
        var skewed = new QuantitySkewPartitioner(0.1).Split(labels, NumClasses, 5, seed: 2);
        var even = new QuantitySkewPartitioner(100).Split(labels, NumClasses, 5, seed: 2);

        var skewedCv = CoefficientOfVariation(skewed.ClientIndices.Select(c => (double)c.Length).ToArray());
        var evenCv = CoefficientOfVariation(even.ClientIndices.Select(c => (double)c.Length).ToArray());

        Assert.True(skewedCv > 0.5, $"beta=0.1 cv {skewedCv}");
        Assert.True(evenCv < 0.1, $"beta=100 cv {evenCv}");
        Assert.All(skewed.ClientIndices, c => Assert.True(c.Length >= 10));
        Assert.True(MeanTotalVariation(skewed) < 0.25); // labels stay IID
    }

    [Fact]
    public void Split_InvalidArguments_Throw()
    {
        var labels = BalancedLabels(5);
        var iid = new IidPartitioner();
        Assert.Throws<ArgumentOutOfRangeException>(() => iid.Split(labels, NumClasses, 0, 1));
        Assert.Throws<ArgumentException>(() => iid.Split(labels, NumClasses, labels.Length + 1, 1));
        var bad = Assert.Throws<ArgumentException>(() => iid.Split([0, 1, 10], NumClasses, 1, 1));
        Assert.Contains("label 10", bad.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => iid.Split([0, -1], NumClasses, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DirichletPartitioner(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DirichletPartitioner(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new QuantitySkewPartitioner(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardPartitioner(0));
        Assert.Throws<ArgumentException>(() => new ShardPartitioner(11).Split(labels, NumClasses, 2, 1));
    }

    [Fact]
    public void Partition_Constructor_RejectsDuplicatesAndOutOfRange()
    {
        int[] labels = [0, 1, 0, 1];
        Assert.Throws<ArgumentException>(() => new Partition([[0, 1], [1, 2]], labels, 2));
        Assert.Throws<ArgumentException>(() => new Partition([[0, 4]], labels, 2));
        var ok = new Partition([[3, 0], [1]], labels, 2);
        Assert.Equal([0, 3], ok.ClientIndices[0]);
        Assert.Equal([1, 1], ok.LabelHistogram[0]);
        Assert.Equal(1, ok.Unassigned);
        Assert.Equal([0.5, 0.5], ok.LabelProportions()[0]);
    }

    [Fact]
    public void Describe_ListsEveryClientAndTotal()
    {
        var partition = new IidPartitioner().Split(BalancedLabels(), NumClasses, 3, seed: 1);
        var text = partition.Describe();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length); // header, 3 clients, total
        Assert.Contains("c9", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("total", lines[^1], StringComparison.Ordinal);
        Assert.Contains("2000", lines[1], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("iid", typeof(IidPartitioner), "iid")]
    [InlineData("IID", typeof(IidPartitioner), "iid")]
    [InlineData("dirichlet:0.5", typeof(DirichletPartitioner), "dirichlet:0.5")]
    [InlineData("dirichlet-balanced:0.3", typeof(BalancedDirichletPartitioner), "dirichlet-balanced:0.3")]
    [InlineData("shards:2", typeof(ShardPartitioner), "shards:2")]
    [InlineData("labels:3", typeof(ShardPartitioner), "shards:3")]
    [InlineData(" quantity: 0.25 ", typeof(QuantitySkewPartitioner), "quantity:0.25")]
    public void Parse_KnownSpecs_RoundTripName(string spec, Type type, string name)
    {
        var partitioner = Partitioners.Parse(spec);
        Assert.IsType(type, partitioner);
        Assert.Equal(name, partitioner.Name);
        Assert.Equal(name, Partitioners.Parse(partitioner.Name).Name);
    }

    [Theory]
    [InlineData("")]
    [InlineData("random")]
    [InlineData("dirichlet")]
    [InlineData("dirichlet:abc")]
    [InlineData("dirichlet:-1")]
    [InlineData("dirichlet-balanced:0")]
    [InlineData("shards:0")]
    [InlineData("shards:1.5")]
    [InlineData("iid:3")]
    public void Parse_BadSpecs_Throw(string spec)
    {
        var ex = Assert.Throws<ArgumentException>(() => Partitioners.Parse(spec));
        Assert.Contains($"'{spec}'", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Mean over clients of the total-variation distance between the client's and the global label distribution.</summary>
    private static double MeanTotalVariation(Partition partition)
    {
        var global = new double[partition.NumClasses];
        foreach (var h in partition.LabelHistogram)
        {
            for (var c = 0; c < h.Length; c++)
            {
                global[c] += h[c];
            }
        }

        var total = global.Sum();
        var proportions = partition.LabelProportions();
        return proportions.Average(p => 0.5 * p.Select((v, c) => Math.Abs(v - (global[c] / total))).Sum());
    }

    private static double MeanMaxClassFraction(Partition partition) => partition.LabelProportions().Average(p => p.Max());

    private static double CoefficientOfVariation(double[] values)
    {
        var mean = values.Average();
        return Math.Sqrt(values.Average(v => (v - mean) * (v - mean))) / mean;
    }
}
