using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Training.Optimizers;

/// <summary>
/// Adam (Kingma and Ba) with bias correction, PyTorch's <c>torch.optim.Adam</c> rule; with <c>decoupled</c> the weight
/// decay is AdamW's (Loshchilov and Hutter), otherwise it is L2 added to the gradient.
/// </summary>
public sealed class AdamOptimizer : LocalOptimizer
{
    private readonly double _learningRate;
    private readonly double _beta1;
    private readonly double _beta2;
    private readonly bool _decoupled;
    private readonly bool _useWeightDecay;
    private readonly Scalar _beta1Scalar;
    private readonly Scalar _oneMinusBeta1;
    private readonly Scalar _beta2Scalar;
    private readonly Scalar _oneMinusBeta2;
    private readonly Scalar _epsilon;
    private readonly Scalar _weightDecay;
    private readonly Scalar _decayFactor;
    private readonly Tensor?[] _firstMoments;
    private readonly Tensor?[] _secondMoments;

    /// <summary>Creates the optimiser.</summary>
    public AdamOptimizer(IEnumerable<Parameter> parameters, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool decoupled = false)
        : base(parameters)
    {
        _learningRate = learningRate;
        _beta1 = beta1;
        _beta2 = beta2;
        _decoupled = decoupled;
        _useWeightDecay = weightDecay != 0;
        _beta1Scalar = beta1.ToScalar();
        _oneMinusBeta1 = (1 - beta1).ToScalar();
        _beta2Scalar = beta2.ToScalar();
        _oneMinusBeta2 = (1 - beta2).ToScalar();
        _epsilon = epsilon.ToScalar();
        _weightDecay = weightDecay.ToScalar();
        _decayFactor = (1 - (learningRate * weightDecay)).ToScalar();
        _firstMoments = new Tensor?[Parameters.Count];
        _secondMoments = new Tensor?[Parameters.Count];
    }

    /// <inheritdoc />
    protected override void StepCore(long stepNumber)
    {
        var biasCorrection1 = 1 - Math.Pow(_beta1, stepNumber);
        var biasCorrection2 = 1 - Math.Pow(_beta2, stepNumber);
        using var negativeStepSize = (-_learningRate / biasCorrection1).ToScalar();
        using var inverseCorrection2Sqrt = (1 / Math.Sqrt(biasCorrection2)).ToScalar();
        for (var i = 0; i < Parameters.Count; i++)
        {
            var parameter = Parameters[i];
            var grad = parameter.grad;
            if (grad is null)
            {
                continue;
            }

            if (_useWeightDecay)
            {
                if (_decoupled)
                {
                    parameter.mul_(_decayFactor);
                }
                else
                {
                    grad = grad.add(parameter, _weightDecay);
                }
            }

            var m = _firstMoments[i] ??= KeepZerosLike(parameter);
            var v = _secondMoments[i] ??= KeepZerosLike(parameter);
            m.mul_(_beta1Scalar).add_(grad, _oneMinusBeta1);
            v.mul_(_beta2Scalar).addcmul_(grad, grad, _oneMinusBeta2);
            var denominator = v.sqrt().mul_(inverseCorrection2Sqrt).add_(_epsilon);
            parameter.addcdiv_(m, denominator, negativeStepSize);
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        foreach (var moment in _firstMoments.Concat(_secondMoments))
        {
            moment?.Dispose();
        }

        _beta1Scalar.Dispose();
        _oneMinusBeta1.Dispose();
        _beta2Scalar.Dispose();
        _oneMinusBeta2.Dispose();
        _epsilon.Dispose();
        _weightDecay.Dispose();
        _decayFactor.Dispose();
    }
}
