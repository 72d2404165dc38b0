using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Federated.Learning.Models;

/// <summary>
/// The CNN the anchors use on (Fashion-)MNIST: conv 32 3×3 → ReLU → max-pool 2 → conv 64 3×3 → ReLU →
/// max-pool 2 → fc 128 → ReLU → fc 10. 225,034 parameters on 28×28×1 inputs.
/// Parameters: <c>conv1.*</c>, <c>conv2.*</c>, <c>fc1.*</c>, <c>fc2.*</c> (the PyTorch names of the same model).
/// </summary>
public sealed class FashionCnn : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> _conv1;
    private readonly Module<Tensor, Tensor> _conv2;
    private readonly Module<Tensor, Tensor> _fc1;
    private readonly Module<Tensor, Tensor> _fc2;

    /// <summary>Builds the CNN for <paramref name="shape"/>.</summary>
    public FashionCnn(ModelShape shape) : base(nameof(FashionCnn))
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        var h = (((shape.Height - 2) / 2) - 2) / 2;
        var w = (((shape.Width - 2) / 2) - 2) / 2;
        if (h < 1 || w < 1)
        {
            throw new ArgumentException($"The CNN needs inputs of at least 10×10 pixels, not {shape.Height}×{shape.Width}.", nameof(shape));
        }

        _conv1 = Conv2d(shape.Channels, 32, 3);
        _conv2 = Conv2d(32, 64, 3);
        _fc1 = Linear(64 * h * w, 128);
        _fc2 = Linear(128, shape.NumClasses);
        register_module("conv1", _conv1);
        register_module("conv2", _conv2);
        register_module("fc1", _fc1);
        register_module("fc2", _fc2);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var x = functional.max_pool2d(functional.relu(_conv1.call(input)), 2);
        x = functional.max_pool2d(functional.relu(_conv2.call(x)), 2);
        x = functional.relu(_fc1.call(x.flatten(1)));
        return _fc2.call(x);
    }
}
