using Federated.Learning.Runtime;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Strategies;

/// <summary>
/// SCAFFOLD's client half (Karimireddy et al., 2020). During training it corrects every parameter's gradient,
/// g ← g + (c − cᵢ), in <see cref="ITrainingPlugin.AfterBackward"/>, with the server's c
/// (<c>scaffold.c</c> in <see cref="ClientRound.ServerTensors"/>) and the client's cᵢ
/// (<c>scaffold.c_local</c> in <see cref="ClientRound.LocalState"/>), each zeros when absent. Afterwards,
/// <see cref="Complete"/> applies option II: cᵢ⁺ = cᵢ − c + (x − yᵢ) / (K η̃), with K the optimiser steps and η̃ the
/// effective step size, stores cᵢ⁺ and uploads Δcᵢ = cᵢ⁺ − cᵢ as <c>scaffold.control_delta</c>. For plain SGD
/// η̃ = η, so (x − yᵢ)/(Kη) is exactly the mean corrected gradient. SGD with momentum β moves the weights by
/// η Σ mₖ with mₖ ≈ gₖ/(1 − β) once the buffer has warmed up, so η̃ = η/(1 − β) keeps cᵢ in gradient units; dividing
/// by η alone inflates cᵢ by 1/(1 − β), and the correction, itself amplified by the momentum, then grows every round
/// until training diverges (it did at β = 0.9, 10 epochs). With weight decay, clipping or Adam option II remains an
/// approximation. Buffers (batch-norm statistics) carry no control variate: their entries are 0.
/// </summary>
public sealed class ScaffoldCorrection : IClientAlgorithm
{
    private readonly float[]? _server;
    private readonly float[]? _local;
    private readonly WeightLayout _layout;
    private List<(Parameter Parameter, Tensor Correction)> _corrections = [];

    /// <summary>Reads c and cᵢ for <paramref name="round"/>.</summary>
    public ScaffoldCorrection(ClientRound round)
    {
        ArgumentNullException.ThrowIfNull(round);
        _layout = round.Weights.Layout;
        var length = checked((int)_layout.TotalLength);
        _server = round.ServerTensors.TryGetValue(Scaffold.ServerControlKey, out var c) ? c : null;
        _local = round.LocalState.TryGetValue(Scaffold.LocalControlKey, out var ci) ? ci : null;
        Check(_server, Scaffold.ServerControlKey, length);
        Check(_local, Scaffold.LocalControlKey, length);
        if (round.Global.Length != length)
        {
            throw new ArgumentException($"The global model has {round.Global.Length} floats; the client's model has {length}.", nameof(round));
        }
    }

    /// <inheritdoc />
    public void BeforeTraining(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Release();
        if (_server is null && _local is null)
        {
            return; // c = cᵢ = 0: no correction.
        }

        var corrections = new List<(Parameter, Tensor)>();
        foreach (var (name, parameter) in context.Model.named_parameters())
        {
            var entry = _layout[name];
            if (entry.Kind != WeightKind.Parameter || entry.Length != parameter.numel())
            {
                throw new InvalidOperationException($"Parameter '{name}' does not match the weight layout.");
            }

            var values = new float[entry.Length];
            var offset = checked((int)entry.Offset);
            _server?.AsSpan(offset, values.Length).CopyTo(values);
            if (_local is not null)
            {
                TensorPrimitives.Subtract(values, _local.AsSpan(offset, values.Length), values);
            }

            corrections.Add((parameter, torch.tensor(values, parameter.shape, device: parameter.device).DetachFromDisposeScope()));
        }

        _corrections = corrections;
    }

    /// <inheritdoc />
    public void AfterBackward(TrainingContext context)
    {
        using var noGrad = torch.no_grad();
        foreach (var (parameter, correction) in _corrections)
        {
            parameter.grad?.add_(correction, TorchScalars.One);
        }
    }

    /// <inheritdoc />
    public void AfterTraining(TrainingContext context) => Release();

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> Complete(ClientRound round, TrainingReport report)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(report);
        Release();
        if (report.Steps < 1)
        {
            throw new InvalidOperationException("SCAFFOLD cannot update its control variate after zero optimiser steps.");
        }

        var length = checked((int)_layout.TotalLength);
        var local = round.Weights.Flatten();

        // cᵢ⁺ = (x − yᵢ) / (K η̃) + cᵢ − c
        var next = new float[length];
        TensorPrimitives.Subtract(round.Global.Span, local, next);
        TensorPrimitives.Multiply(next, (float)(1.0 / (report.Steps * EffectiveStepSize(round.Training))), next);
        if (_local is not null)
        {
            TensorPrimitives.Add(next, _local, next);
        }

        if (_server is not null)
        {
            TensorPrimitives.Subtract(next, _server, next);
        }

        foreach (var entry in _layout.Entries)
        {
            if (entry.Kind != WeightKind.Parameter)
            {
                next.AsSpan(checked((int)entry.Offset), checked((int)entry.Length)).Clear();
            }
        }

        // Δcᵢ = cᵢ⁺ − cᵢ
        var delta = (float[])next.Clone();
        if (_local is not null)
        {
            TensorPrimitives.Subtract(delta, _local, delta);
        }

        round.LocalState[Scaffold.LocalControlKey] = next;
        return new Dictionary<string, float[]>(StringComparer.Ordinal) { [Scaffold.ControlDeltaKey] = delta };
    }

    /// <summary>The step size that turns K steps' displacement into a mean gradient: η, or η/(1 − β) for SGD with momentum β.</summary>
    internal static double EffectiveStepSize(TrainingOptions training)
    {
        ArgumentNullException.ThrowIfNull(training);
        return training.Optimizer == OptimizerKind.Sgd && training.Momentum > 0
            ? training.LearningRate / (1 - training.Momentum)
            : training.LearningRate;
    }

    private static void Check(float[]? vector, string name, int length)
    {
        if (vector is null)
        {
            return;
        }

        if (vector.Length != length)
        {
            throw new ArgumentException($"'{name}' has {vector.Length} floats; the model has {length}.");
        }

        if (!TensorPrimitives.IsFiniteAll<float>(vector))
        {
            throw new ArgumentException($"'{name}' has non-finite values.");
        }
    }

    private void Release()
    {
        foreach (var (_, correction) in _corrections)
        {
            correction.Dispose();
        }

        _corrections = [];
    }
}
