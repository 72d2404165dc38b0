using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Models;

/// <summary>Builds models by their stable names, the names configuration and the wire use.</summary>
public static class ModelFactory
{
    // libtorch initialises weights from its global generator: seeding and building happen under one lock so that
    // models built on other threads at the same time (in-process agents, parallel tests) cannot interleave.
    private static readonly Lock InitializationGate = new();

    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["mlp", "mlp400", "cnn", "simple-cnn", "resnet8"];

    /// <summary>
    /// Builds model <paramref name="name"/> for <paramref name="shape"/>, initialised from <paramref name="seed"/>
    /// (the same seed gives the same initial weights), on <paramref name="device"/>.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Create(string name, ModelShape shape, Device device, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        nn.Module<Tensor, Tensor> model;
        lock (InitializationGate)
        {
            torch.manual_seed(seed);
            model = name.Trim().ToLowerInvariant() switch
            {
                "mlp" or "2nn" => new Mlp(shape),

                // van de Ven & Tolias' continual-learning MLP (784-400-400-out), for federated runs comparable with
                // the centralised continual benchmarks.
                "mlp400" => new Mlp(shape, [400, 400]),
                "cnn" or "fashion-cnn" => new FashionCnn(shape),
                "simple-cnn" or "simplecnn" => new SimpleCnn(shape),
                "resnet8" or "resnet" or "small-resnet" => new SmallResNet(shape),
                _ => throw new ArgumentException($"Unknown model '{name}'. Known models: {string.Join(", ", Names)}.", nameof(name)),
            };
        }

        return model.to(device);
    }

    /// <summary>Number of trainable parameters.</summary>
    public static long CountParameters(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.parameters().Sum(p => p.numel());
    }
}
