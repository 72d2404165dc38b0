using Federated.Learning.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Training.Optimizers;

/// <summary>SGD with optional (Nesterov) momentum and L2 weight decay — PyTorch's <c>torch.optim.SGD</c> rule (no dampening).</summary>
public sealed class SgdOptimizer : LocalOptimizer
{
    private readonly Scalar _negativeLearningRate;
    private readonly Scalar _momentum;
    private readonly Scalar _weightDecay;
    private readonly bool _useMomentum;
    private readonly bool _useWeightDecay;
    private readonly bool _nesterov;
    private readonly Tensor?[] _buffers;

    /// <summary>Creates the optimiser.</summary>
    public SgdOptimizer(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0, double weightDecay = 0, bool nesterov = false)
        : base(parameters)
    {
        if (nesterov && momentum <= 0)
        {
            throw new ArgumentException("Nesterov momentum needs momentum > 0.", nameof(nesterov));
        }

        _negativeLearningRate = (-learningRate).ToScalar();
        _momentum = momentum.ToScalar();
        _weightDecay = weightDecay.ToScalar();
        _useMomentum = momentum != 0;
        _useWeightDecay = weightDecay != 0;
        _nesterov = nesterov;
        _buffers = new Tensor?[Parameters.Count];
    }

    /// <inheritdoc />
    protected override void StepCore(long stepNumber)
    {
        for (var i = 0; i < Parameters.Count; i++)
        {
            var parameter = Parameters[i];
            var grad = parameter.grad;
            if (grad is null)
            {
                continue;
            }

            var d = _useWeightDecay ? grad.add(parameter, _weightDecay) : grad;
            if (_useMomentum)
            {
                var buffer = _buffers[i];
                if (buffer is null)
                {
                    buffer = d.clone().detach().DetachFromDisposeScope();
                    _buffers[i] = buffer;
                }
                else
                {
                    buffer.mul_(_momentum).add_(d, TorchScalars.One);
                }

                d = _nesterov ? d.add(buffer, _momentum) : buffer;
            }

            parameter.add_(d, _negativeLearningRate);
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        foreach (var buffer in _buffers)
        {
            buffer?.Dispose();
        }

        _negativeLearningRate.Dispose();
        _momentum.Dispose();
        _weightDecay.Dispose();
    }
}
