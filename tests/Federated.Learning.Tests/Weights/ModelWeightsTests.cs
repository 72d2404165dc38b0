using Federated.Learning.Models;
using Federated.Learning.Weights;
using TorchSharp;

namespace Federated.Learning.Tests.Weights;

public sealed class ModelWeightsTests
{
    [Fact]
    public void Flatten_Cnn_MatchesConcatenatedParameters()
    {
        using var model = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU, seed: 3);
        var weights = new ModelWeights(model);

        var vector = weights.Flatten();

        using var expected = torch.cat(model.parameters().Select(p => p.detach().reshape(-1)).ToList(), 0);
        Assert.Equal(225_034, vector.Length);
        Assert.Equal(expected.data<float>().ToArray(), vector);
    }

    [Fact]
    public void Load_VectorFromOtherModel_MakesOutputsEqual()
    {
        using var source = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU, seed: 1);
        using var target = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU, seed: 2);
        using var input = torch.rand(5, 1, 28, 28);

        new ModelWeights(target).Load(new ModelWeights(source).Flatten());

        using var a = source.call(input);
        using var b = target.call(input);
        Assert.True(a.allclose(b, rtol: 0, atol: 0));
    }

    [Fact]
    public void LoadThenFlatten_RoundTripsExactly()
    {
        using var model = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU);
        var weights = new ModelWeights(model);
        var random = new Random(5);
        var vector = Enumerable.Range(0, (int)weights.Layout.TotalLength).Select(_ => random.NextSingle() - 0.5f).ToArray();

        weights.Load(vector);

        Assert.Equal(vector, weights.Flatten());
    }

    [Fact]
    public void Layout_ResNet_PutsFloatBuffersInVectorAndCountersApart()
    {
        using var model = ModelFactory.Create("resnet8", ModelShape.Cifar10, torch.CPU);

        var weights = new ModelWeights(model);

        Assert.Contains(weights.Layout.Entries, e => e.Name == "bn1.running_mean" && e.Kind == WeightKind.Buffer);
        Assert.Contains(weights.Layout.Entries, e => e.Name == "bn1.weight" && e.Kind == WeightKind.Parameter);
        Assert.DoesNotContain(weights.Layout.Entries, e => e.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal));
        Assert.Contains("bn1.num_batches_tracked", weights.IntegerBufferNames);
        Assert.Equal(ModelFactory.CountParameters(model), weights.Layout.ParameterCount);
    }

    [Fact]
    public void SetIntegerBuffers_RoundTrips()
    {
        using var model = ModelFactory.Create("resnet8", ModelShape.Cifar10, torch.CPU);
        var weights = new ModelWeights(model);

        weights.SetIntegerBuffers(new Dictionary<string, long[]> { ["layer2.bn1.num_batches_tracked"] = [42] });

        Assert.Equal([42L], weights.GetIntegerBuffers()["layer2.bn1.num_batches_tracked"]);
        Assert.Throws<KeyNotFoundException>(() => weights.SetIntegerBuffers(new Dictionary<string, long[]> { ["nope"] = [1] }));
    }

    [Fact]
    public void Load_WrongLength_Throws()
    {
        using var model = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU);

        var error = Assert.Throws<ArgumentException>(() => new ModelWeights(model).Load(new float[10]));

        Assert.Contains("225034", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EnsureCompatible_DifferentModels_NamesFirstDifference()
    {
        using var cnn = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU);
        using var mlp = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU);

        var error = Assert.Throws<InvalidOperationException>(() => new ModelWeights(cnn).Layout.EnsureCompatible(new ModelWeights(mlp).Layout));

        Assert.Contains("conv1.weight", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Delta_ThenApply_RecoversVector()
    {
        float[] before = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        float[] after = [2, 2, 1, 4, 9, 6, 7, 0, 10];
        var delta = new float[9];
        var restored = new float[9];

        WeightVectors.Delta(after, before, delta);
        WeightVectors.Apply(before, delta, restored);

        Assert.Equal([1, 0, -2, 0, 4, 0, 0, -8, 1], delta);
        Assert.Equal(after, restored);
        Assert.Equal(Math.Sqrt(1 + 4 + 16 + 64 + 1), WeightVectors.L2Norm(delta), 6);
    }

    [Fact]
    public void AddScaled_AccumulatesWeightedSum()
    {
        float[] accumulator = [1, 1, 1];

        WeightVectors.AddScaled(accumulator, [2, 4, 6], 0.5f);

        Assert.Equal([2f, 3f, 4f], accumulator);
        Assert.Throws<ArgumentException>(() => WeightVectors.AddScaled(accumulator, [1, 2], 1f));
    }
}
