using Federated.Learning.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Federated.Learning.Models;

/// <summary>
/// A small ResNet for 32×32 colour inputs (ResNet-8 in the style of He et al.'s CIFAR networks): a 3×3 stem of
/// 16 channels, three stages of one basic block each (16, 32, 64 channels; stride 2 between stages), global
/// average pooling and a linear classifier. Batch normalisation gives it floating-point running statistics
/// (which travel in the weight vector) and an integer batch counter (which travels separately).
/// </summary>
public sealed class SmallResNet : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> _conv1;
    private readonly Module<Tensor, Tensor> _bn1;
    private readonly BasicBlock _layer1;
    private readonly BasicBlock _layer2;
    private readonly BasicBlock _layer3;
    private readonly Module<Tensor, Tensor> _fc;

    /// <summary>Builds the network for <paramref name="shape"/>.</summary>
    public SmallResNet(ModelShape shape) : base(nameof(SmallResNet))
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        if (shape.Height < 8 || shape.Width < 8)
        {
            throw new ArgumentException($"The ResNet needs inputs of at least 8×8 pixels, not {shape.Height}×{shape.Width}.", nameof(shape));
        }

        _conv1 = Conv2d(shape.Channels, 16, 3, padding: 1, bias: false);
        _bn1 = BatchNorm2d(16);
        _layer1 = new BasicBlock(16, 16, 1);
        _layer2 = new BasicBlock(16, 32, 2);
        _layer3 = new BasicBlock(32, 64, 2);
        _fc = Linear(64, shape.NumClasses);
        register_module("conv1", _conv1);
        register_module("bn1", _bn1);
        register_module("layer1", _layer1);
        register_module("layer2", _layer2);
        register_module("layer3", _layer3);
        register_module("fc", _fc);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var x = functional.relu(_bn1.call(_conv1.call(input)));
        x = _layer3.call(_layer2.call(_layer1.call(x)));
        x = functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1);
        return _fc.call(x);
    }

    /// <summary>conv 3×3 → BN → ReLU → conv 3×3 → BN, plus the (projected) input, → ReLU.</summary>
    private sealed class BasicBlock : Module<Tensor, Tensor>
    {
        private readonly Module<Tensor, Tensor> _conv1;
        private readonly Module<Tensor, Tensor> _bn1;
        private readonly Module<Tensor, Tensor> _conv2;
        private readonly Module<Tensor, Tensor> _bn2;
        private readonly Module<Tensor, Tensor>? _shortcutConv;
        private readonly Module<Tensor, Tensor>? _shortcutBn;

        public BasicBlock(int inChannels, int outChannels, int stride) : base(nameof(BasicBlock))
        {
            _conv1 = Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: false);
            _bn1 = BatchNorm2d(outChannels);
            _conv2 = Conv2d(outChannels, outChannels, 3, padding: 1, bias: false);
            _bn2 = BatchNorm2d(outChannels);
            register_module("conv1", _conv1);
            register_module("bn1", _bn1);
            register_module("conv2", _conv2);
            register_module("bn2", _bn2);
            if (stride != 1 || inChannels != outChannels)
            {
                _shortcutConv = Conv2d(inChannels, outChannels, 1, stride: stride, bias: false);
                _shortcutBn = BatchNorm2d(outChannels);
                register_module("shortcut_conv", _shortcutConv);
                register_module("shortcut_bn", _shortcutBn);
            }
        }

        public override Tensor forward(Tensor input)
        {
            var x = functional.relu(_bn1.call(_conv1.call(input)));
            x = _bn2.call(_conv2.call(x));
            var identity = _shortcutConv is null ? input : _shortcutBn!.call(_shortcutConv.call(input));
            return functional.relu(x.add(identity, TorchScalars.One));
        }
    }
}
