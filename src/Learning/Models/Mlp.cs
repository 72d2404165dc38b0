using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Federated.Learning.Models;

/// <summary>
/// A multi-layer perceptron: flatten → (linear → ReLU)* → linear. With the default hidden sizes (200, 200) on
/// 28×28 inputs this is the "2NN" of McMahan et al.'s FedAvg paper (199,210 parameters).
/// Parameters: <c>fc1.weight</c>, <c>fc1.bias</c>, … <c>fcN.weight</c>, <c>fcN.bias</c>.
/// </summary>
public sealed class Mlp : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor>[] _layers;

    /// <summary>Builds the MLP for <paramref name="shape"/> with the given hidden widths.</summary>
    public Mlp(ModelShape shape, IReadOnlyList<int>? hidden = null) : base(nameof(Mlp))
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        hidden ??= [200, 200];
        var widths = new List<int> { shape.InputSize };
        widths.AddRange(hidden);
        widths.Add(shape.NumClasses);
        _layers = new Module<Tensor, Tensor>[widths.Count - 1];
        for (var i = 0; i < _layers.Length; i++)
        {
            _layers[i] = Linear(widths[i], widths[i + 1]);
            register_module($"fc{i + 1}", _layers[i]);
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var x = input.flatten(1);
        for (var i = 0; i < _layers.Length - 1; i++)
        {
            x = functional.relu(_layers[i].call(x));
        }

        return _layers[^1].call(x);
    }
}
