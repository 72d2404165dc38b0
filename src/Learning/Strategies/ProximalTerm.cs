using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Strategies;

/// <summary>
/// FedProx's client half: adds μ/2 · Σ ‖w − w_global‖² over the model's trainable parameters (not its buffers)
/// to the loss in <see cref="ITrainingPlugin.AfterForward"/>. The global parameters are copied to the model's
/// device once, in <see cref="ITrainingPlugin.BeforeTraining"/>, and released in
/// <see cref="ITrainingPlugin.AfterTraining"/>.
/// </summary>
public sealed class ProximalTerm : IClientAlgorithm
{
    private readonly ReadOnlyMemory<float> _global;
    private readonly WeightLayout _layout;
    private List<(Parameter Parameter, Tensor Global)> _anchors = [];

    /// <summary>Creates the term for <paramref name="round"/>'s global model with strength <paramref name="mu"/> ≥ 0.</summary>
    public ProximalTerm(ClientRound round, double mu)
    {
        ArgumentNullException.ThrowIfNull(round);
        Mu = StrategyGuards.NonNegative(mu, nameof(mu));
        _layout = round.Weights.Layout;
        if (round.Global.Length != _layout.TotalLength)
        {
            throw new ArgumentException($"The global model has {round.Global.Length} floats; the client's model has {_layout.TotalLength}.", nameof(round));
        }

        _global = round.Global;
    }

    /// <summary>μ.</summary>
    public double Mu { get; }

    /// <inheritdoc />
    public void BeforeTraining(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Release();
        if (Mu == 0)
        {
            return;
        }

        var anchors = new List<(Parameter, Tensor)>();
        foreach (var (name, parameter) in context.Model.named_parameters())
        {
            var entry = _layout[name];
            if (entry.Kind != WeightKind.Parameter || entry.Length != parameter.numel())
            {
                throw new InvalidOperationException($"Parameter '{name}' does not match the weight layout.");
            }

            var values = _global.Span.Slice(checked((int)entry.Offset), checked((int)entry.Length)).ToArray();
            anchors.Add((parameter, torch.tensor(values, parameter.shape, device: parameter.device).DetachFromDisposeScope()));
        }

        _anchors = anchors;
    }

    /// <inheritdoc />
    public void AfterForward(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_anchors.Count == 0)
        {
            return;
        }

        Tensor? sum = null;
        foreach (var (parameter, global) in _anchors)
        {
            // Explicit alpha: TorchSharp's operators pass an implicit Scalar that may be finalized mid-call (see TorchScalars).
            var term = parameter.sub(global).square().sum();
            sum = sum is null ? term : sum.add_(term, TorchScalars.One);
        }

        // A Scalar kept alive across the native call (see LocalOptimizer's remarks on TorchSharp's Scalar).
        using var halfMu = (Mu / 2).ToScalar();
        context.Loss = context.Loss!.add(sum!.mul(halfMu), TorchScalars.One);
    }

    /// <inheritdoc />
    public void AfterTraining(TrainingContext context) => Release();

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> Complete(ClientRound round, TrainingReport report)
    {
        Release();
        return new Dictionary<string, float[]>(StringComparer.Ordinal);
    }

    private void Release()
    {
        foreach (var (_, global) in _anchors)
        {
            global.Dispose();
        }

        _anchors = [];
    }
}
