using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Training.Optimizers;

/// <summary>
/// The optimisers of the local training loop, with PyTorch's update rules.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>Scalar</c> is a finalizable handle that dispose scopes do not track, and its tensor methods
/// pass <c>scalar.Handle</c> to native code without keeping the managed object alive: an implicit
/// <c>double → Scalar</c> temporary (as in <c>buf.mul_(momentum)</c> inside TorchSharp's own optimisers) can be finalised
/// while libtorch still reads it. Seen here as <c>Expected false to be true</c> from <c>c10::Scalar::toDouble</c> inside
/// <c>SGD.step</c>, once in about 300 training tasks when ten agents trained in one process. These optimisers keep every
/// scalar they pass to libtorch in a field or a <c>using</c> variable, so none can be collected mid-call.
/// </remarks>
public abstract class LocalOptimizer : IDisposable
{
    private bool _disposed;

    /// <summary>Binds the optimiser to <paramref name="parameters"/>.</summary>
    protected LocalOptimizer(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToArray();
    }

    /// <summary>The parameters being optimised.</summary>
    protected IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Optimiser steps taken.</summary>
    public long Steps { get; private set; }

    /// <summary>Creates the optimiser <paramref name="options"/> ask for.</summary>
    public static LocalOptimizer Create(IEnumerable<Parameter> parameters, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Optimizer switch
        {
            OptimizerKind.Sgd => new SgdOptimizer(parameters, options.LearningRate, options.Momentum, options.WeightDecay, options.Nesterov),
            OptimizerKind.Adam => new AdamOptimizer(parameters, options.LearningRate, options.Beta1, options.Beta2, 1e-8, options.WeightDecay, decoupled: false),
            OptimizerKind.AdamW => new AdamOptimizer(parameters, options.LearningRate, options.Beta1, options.Beta2, 1e-8, options.WeightDecay, decoupled: true),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "Unknown optimiser."),
        };
    }

    /// <summary>Zeroes every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var parameter in Parameters)
        {
            using var grad = parameter.grad;
            grad?.zero_();
        }
    }

    /// <summary>Applies one update from the current gradients.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Steps++;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        StepCore(Steps);
    }

    /// <summary>The update; <paramref name="stepNumber"/> counts from 1.</summary>
    protected abstract void StepCore(long stepNumber);

    /// <summary>Creates state that outlives the step's dispose scope.</summary>
    protected static Tensor KeepZerosLike(Tensor tensor) => torch.zeros_like(tensor).DetachFromDisposeScope();

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            Dispose(disposing: true);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Releases the optimiser's tensors and scalars.</summary>
    protected abstract void Dispose(bool disposing);
}
