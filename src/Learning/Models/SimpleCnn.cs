using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Federated.Learning.Models;

/// <summary>
/// NIID-Bench's "simple CNN" (Li et al., 2021): conv 6 5×5 → ReLU → max-pool 2 → conv 16 5×5 → ReLU → max-pool 2
/// → fc 120 → ReLU → fc 84 → ReLU → fc classes. 44,426 parameters on 28×28×1, 62,006 on 32×32×3.
/// </summary>
public sealed class SimpleCnn : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> _conv1;
    private readonly Module<Tensor, Tensor> _conv2;
    private readonly Module<Tensor, Tensor> _fc1;
    private readonly Module<Tensor, Tensor> _fc2;
    private readonly Module<Tensor, Tensor> _fc3;

    /// <summary>Builds the network for <paramref name="shape"/>.</summary>
    public SimpleCnn(ModelShape shape) : base(nameof(SimpleCnn))
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        var h = (((shape.Height - 4) / 2) - 4) / 2;
        var w = (((shape.Width - 4) / 2) - 4) / 2;
        if (h < 1 || w < 1)
        {
            throw new ArgumentException($"The simple CNN needs inputs of at least 16×16 pixels, not {shape.Height}×{shape.Width}.", nameof(shape));
        }

        _conv1 = Conv2d(shape.Channels, 6, 5);
        _conv2 = Conv2d(6, 16, 5);
        _fc1 = Linear(16 * h * w, 120);
        _fc2 = Linear(120, 84);
        _fc3 = Linear(84, shape.NumClasses);
        register_module("conv1", _conv1);
        register_module("conv2", _conv2);
        register_module("fc1", _fc1);
        register_module("fc2", _fc2);
        register_module("fc3", _fc3);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var x = functional.max_pool2d(functional.relu(_conv1.call(input)), 2);
        x = functional.max_pool2d(functional.relu(_conv2.call(x)), 2);
        x = functional.relu(_fc1.call(x.flatten(1)));
        x = functional.relu(_fc2.call(x));
        return _fc3.call(x);
    }
}
