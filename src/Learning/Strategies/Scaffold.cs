using System.Numerics.Tensors;

namespace Federated.Learning.Strategies;

/// <summary>
/// SCAFFOLD (Karimireddy et al., 2020), server half, with the clients' option-II control variates
/// (<see cref="ScaffoldCorrection"/>). The server keeps a control variate c (zeros at first) and sends it as
/// <c>scaffold.c</c>; every client uploads Δyᵢ (the delta) and Δcᵢ (<c>scaffold.control_delta</c>). With S the
/// accepted updates and N the enrolled clients (<c>available</c>):
/// x' = x + η_g · (1/|S|) Σ Δyᵢ and c ← c + (|S|/N) · (1/|S|) Σ Δcᵢ = c + Σ Δcᵢ / N.
/// The mean over clients is unweighted, as in the paper (Algorithm 1), whatever the clients' data sizes.
/// Before the first round the server does not yet know the model's length and sends no <c>scaffold.c</c>;
/// clients read its absence as zeros.
/// </summary>
public sealed class Scaffold : IStrategy
{
    /// <summary>The server control variate, sent to clients and kept in <see cref="SaveState"/>.</summary>
    public const string ServerControlKey = "scaffold.c";

    /// <summary>The tensor every client must upload: cᵢ⁺ − cᵢ.</summary>
    public const string ControlDeltaKey = "scaffold.control_delta";

    /// <summary>Where clients keep their own control variate cᵢ in <see cref="ClientRound.LocalState"/>.</summary>
    public const string LocalControlKey = "scaffold.c_local";

    /// <summary>The configuration key (value <c>true</c>) that turns the client correction on.</summary>
    public const string ConfigKey = "scaffold";

    private float[]? _control;

    /// <summary>Creates SCAFFOLD with global step size <paramref name="globalLearningRate"/> η_g (default 1).</summary>
    public Scaffold(double globalLearningRate = 1.0)
    {
        GlobalLearningRate = StrategyGuards.Positive(globalLearningRate, nameof(globalLearningRate));
    }

    /// <summary>η_g.</summary>
    public double GlobalLearningRate { get; }

    /// <inheritdoc />
    public string Name => "scaffold";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) =>
        new Dictionary<string, string>(StringComparer.Ordinal) { [ConfigKey] = "true" };

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round)
    {
        var tensors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (_control is not null)
        {
            tensors[ServerControlKey] = (float[])_control.Clone();
        }

        return tensors;
    }

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available)
    {
        if (available < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(available), available, "SCAFFOLD needs the number of enrolled clients N ≥ 1.");
        }

        StrategyGuards.CheckStateFits(Name, _control, globalModel.Length);
        return new Aggregator(this, globalModel, available);
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState()
    {
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (_control is not null)
        {
            state[ServerControlKey] = (float[])_control.Clone();
        }

        return state;
    }

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        StrategyGuards.CheckState(Name, state, ServerControlKey);
        _control = state.TryGetValue(ServerControlKey, out var c) ? (float[])c.Clone() : null;
    }

    private sealed class Aggregator(Scaffold owner, ReadOnlyMemory<float> globalModel, int available) : RoundAggregatorBase(owner.Name, globalModel)
    {
        private readonly float[] _deltaSum = new float[globalModel.Length];
        private readonly float[] _controlSum = new float[globalModel.Length];

        protected override void ValidateMore(ClientUpdate update)
        {
            if (!update.Tensors.TryGetValue(ControlDeltaKey, out var controlDelta))
            {
                throw new ArgumentException($"scaffold: client '{update.ClientId}' sent no '{ControlDeltaKey}' tensor.", nameof(update));
            }

            RequireVector(update.ClientId, $"'{ControlDeltaKey}'", controlDelta, Global.Length);
            if (Count >= available)
            {
                throw new ArgumentException($"scaffold: client '{update.ClientId}' would be update {Count + 1} of a round with only {available} enrolled clients.", nameof(update));
            }
        }

        protected override void Fold(ClientUpdate update)
        {
            TensorPrimitives.Add(_deltaSum, update.Delta, _deltaSum);
            TensorPrimitives.Add(_controlSum, update.Tensors[ControlDeltaKey], _controlSum);
        }

        protected override float[] Complete(Dictionary<string, double> metrics)
        {
            // Δ = (1/|S|) Σ Δyᵢ; x' = x + η_g Δ.
            TensorPrimitives.Multiply(_deltaSum, (float)(1.0 / Count), _deltaSum);
            RecordNorm(metrics, _deltaSum);
            var model = CopyGlobal();
            TensorPrimitives.MultiplyAdd(_deltaSum, (float)owner.GlobalLearningRate, model, model);

            // c ← c + (|S|/N)(1/|S|) Σ Δcᵢ = c + Σ Δcᵢ / N.
            var control = owner._control ?? new float[Global.Length];
            TensorPrimitives.MultiplyAdd(_controlSum, (float)(1.0 / available), control, control);
            owner._control = control;
            metrics["control_norm"] = Weights.WeightVectors.L2Norm(control);
            return model;
        }
    }
}
