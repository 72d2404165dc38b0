using Federated.Learning.Checkpoints;
using Federated.Learning.Models;
using Federated.Learning.Weights;
using TorchSharp;

namespace Federated.Learning.Tests.Training;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void SaveLoad_ResNet_RestoresFloatsAndIntegerBuffers()
    {
        var path = Path.Combine(_dir, "m.safetensors");
        using var source = ModelFactory.Create("resnet8", ModelShape.Cifar10, torch.CPU, seed: 1);
        var sourceWeights = new ModelWeights(source);
        sourceWeights.SetIntegerBuffers(new Dictionary<string, long[]> { ["bn1.num_batches_tracked"] = [17] });
        using var target = ModelFactory.Create("resnet8", ModelShape.Cifar10, torch.CPU, seed: 2);
        var targetWeights = new ModelWeights(target);

        ModelCheckpoint.Save(path, sourceWeights, new Dictionary<string, string> { ["round"] = "3" });
        var metadata = ModelCheckpoint.Load(path, targetWeights);

        Assert.Equal(sourceWeights.Flatten(), targetWeights.Flatten());
        Assert.Equal([17L], targetWeights.GetIntegerBuffers()["bn1.num_batches_tracked"]);
        Assert.Equal("3", metadata["round"]);
        Assert.Equal(sourceWeights.Layout.Fingerprint, metadata[ModelCheckpoint.LayoutKey]);
    }

    [Fact]
    public void Load_CheckpointOfOtherModel_ThrowsAndLeavesModelUntouched()
    {
        var path = Path.Combine(_dir, "mlp.safetensors");
        using var mlp = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU);
        ModelCheckpoint.Save(path, new ModelWeights(mlp));
        using var cnn = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU);
        var weights = new ModelWeights(cnn);
        var before = weights.Flatten();

        var error = Assert.Throws<InvalidDataException>(() => ModelCheckpoint.Load(path, weights));

        Assert.Contains("conv1.weight", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, weights.Flatten());
    }

    [Fact]
    public void Load_TruncatedCheckpoint_ThrowsInvalidData()
    {
        var path = Path.Combine(_dir, "cut.safetensors");
        using var model = ModelFactory.Create("cnn", ModelShape.Mnist, torch.CPU);
        ModelCheckpoint.Save(path, new ModelWeights(model));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length - 100).ToArray());

        Assert.Throws<InvalidDataException>(() => ModelCheckpoint.Load(path, new ModelWeights(model)));
    }
}
