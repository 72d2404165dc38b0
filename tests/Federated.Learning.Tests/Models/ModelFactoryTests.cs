using Federated.Learning.Models;
using Federated.Learning.Weights;
using TorchSharp;

namespace Federated.Learning.Tests.Models;

public sealed class ModelFactoryTests
{
    [Theory]
    [InlineData("cnn", 1, 28, 28, 225_034)]
    [InlineData("mlp", 1, 28, 28, 199_210)]
    [InlineData("mlp400", 1, 28, 28, 478_410)]
    [InlineData("simple-cnn", 1, 28, 28, 44_426)]
    [InlineData("simple-cnn", 3, 32, 32, 62_006)]
    public void Create_KnownArchitecture_HasPublishedParameterCount(string name, int channels, int height, int width, long expected)
    {
        using var model = ModelFactory.Create(name, new ModelShape(channels, height, width, 10), torch.CPU);

        Assert.Equal(expected, ModelFactory.CountParameters(model));
    }

    [Fact]
    public void Create_Cnn_HasStablePyTorchParameterNames()
    {
        using var model = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU);

        var names = new ModelWeights(model).Layout.Entries.Select(e => e.Name).ToArray();

        Assert.Equal(["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], names);
    }

    [Theory]
    [InlineData("mlp")]
    [InlineData("cnn")]
    [InlineData("simple-cnn")]
    [InlineData("resnet8")]
    public void Forward_BatchOfCifarLayoutInputs_GivesOneLogitPerClass(string name)
    {
        // No CIFAR data is installed here: the 32×32×3 layout is exercised with synthetic inputs.
        using var model = ModelFactory.Create(name, ModelShape.Cifar10, torch.CPU);
        using var input = torch.rand(4, 3, 32, 32);

        using var output = model.call(input);

        Assert.Equal([4L, 10L], output.shape);
        Assert.True(output.isfinite().all().item<bool>());
    }

    [Fact]
    public void Create_SameSeed_SameInitialWeights()
    {
        using var a = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU, seed: 7);
        using var b = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU, seed: 7);
        using var c = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU, seed: 8);

        Assert.Equal(new ModelWeights(a).Flatten(), new ModelWeights(b).Flatten());
        Assert.NotEqual(new ModelWeights(a).Flatten(), new ModelWeights(c).Flatten());
    }

    [Fact]
    public void Create_UnknownName_ThrowsWithKnownNames()
    {
        var error = Assert.Throws<ArgumentException>(() => ModelFactory.Create("vgg", ModelShape.Mnist, torch.CPU));

        Assert.Contains("resnet8", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_InputTooSmall_ThrowsClearError()
    {
        var error = Assert.Throws<ArgumentException>(() => ModelFactory.Create("cnn", new ModelShape(1, 8, 8, 10), torch.CPU));

        Assert.Contains("8×8", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_CustomModule_CreateBuildsItForTheShapeUnderTheSeed()
    {
        ModelFactory.Register("tiny-linear", shape => torch.nn.Linear(shape.InputSize, shape.NumClasses));
        try
        {
            var shape = new ModelShape(1, 2, 2, 3);
            using var first = ModelFactory.Create("Tiny-Linear", shape, torch.CPU, seed: 5);
            using var second = ModelFactory.Create("tiny-linear", shape, torch.CPU, seed: 5);

            Assert.Equal(4 * 3 + 3, ModelFactory.CountParameters(first));
            Assert.Equal(new ModelWeights(first).Flatten(), new ModelWeights(second).Flatten());
            Assert.Contains("tiny-linear", ModelFactory.Names);
        }
        finally
        {
            ModelFactory.Unregister("tiny-linear");
        }
    }

    [Fact]
    public void Register_BuiltInName_Throws() =>
        Assert.Throws<ArgumentException>(() => ModelFactory.Register("cnn", shape => torch.nn.Linear(shape.InputSize, shape.NumClasses)));
}
