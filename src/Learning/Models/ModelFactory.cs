using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Models;

/// <summary>Builds models by their stable names, the names configuration and the wire use.</summary>
public static class ModelFactory
{
    // libtorch initialises weights from its global generator: seeding and building happen under one lock so that
    // models built on other threads at the same time (in-process agents, parallel tests) cannot interleave.
    private static readonly Lock InitializationGate = new();

    private static readonly string[] BuiltInNames = ["mlp", "mlp400", "cnn", "simple-cnn", "resnet8"];

    // Models an application registered (bring your own model); read under InitializationGate.
    private static readonly Dictionary<string, Func<ModelShape, nn.Module<Tensor, Tensor>>> Registered = new(StringComparer.Ordinal);

    /// <summary>The names <see cref="Create"/> accepts: the built-in models, then those added with <see cref="Register"/>.</summary>
    public static IReadOnlyList<string> Names
    {
        get
        {
            lock (InitializationGate)
            {
                return [.. BuiltInNames, .. Registered.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>
    /// Makes an application's own TorchSharp module buildable by <paramref name="name"/>, the name configuration
    /// (<c>Coordinator:Model</c>) and the wire use. Register the same name in the coordinator's process and in every
    /// agent's: both build the model to agree on its weight layout. <paramref name="create"/> runs under
    /// <see cref="Create"/>'s seed, so the same seed gives the same initial weights; its parameter names travel on
    /// the wire and must be stable. Registering a name again replaces the earlier factory.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or names a built-in model.</exception>
    public static void Register(string name, Func<ModelShape, nn.Module<Tensor, Tensor>> create)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(create);
        var key = name.Trim().ToLowerInvariant();
        if (BuiltInNames.Contains(key) || key is "2nn" or "fashion-cnn" or "simplecnn" or "resnet" or "small-resnet")
        {
            throw new ArgumentException($"Model '{name}' is built in; register your model under another name.", nameof(name));
        }

        lock (InitializationGate)
        {
            Registered[key] = create;
        }
    }

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
            var key = name.Trim().ToLowerInvariant();
            model = Registered.TryGetValue(key, out var create) ? create(shape) : key switch
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

    /// <summary>Forgets a registered model (tests register theirs and clean up).</summary>
    internal static bool Unregister(string name)
    {
        lock (InitializationGate)
        {
            return Registered.Remove(name.Trim().ToLowerInvariant());
        }
    }

    /// <summary>Number of trainable parameters.</summary>
    public static long CountParameters(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.parameters().Sum(p => p.numel());
    }
}
