using System.Numerics.Tensors;

namespace Federated.Learning.Strategies;

/// <summary>
/// FedAvg with server momentum (Hsu et al., 2019): with the weighted mean delta Δ,
/// v ← β v + Δ and x' = x + η_s v (v starts at zero). Flower's FedAvgM keeps the momentum of the
/// pseudo-gradient g = −Δ instead, m ← β m + g and x' = x − η_s m; by induction m = −v, so the two produce the
/// same models (Flower's first round sets m = g, which is β·0 + g).
/// </summary>
public sealed class FedAvgM : IStrategy
{
    /// <summary>The <see cref="SaveState"/> key of the momentum vector.</summary>
    public const string MomentumKey = "fedavgm.momentum";

    private float[]? _velocity;

    /// <summary>Creates FedAvgM.</summary>
    /// <param name="serverLearningRate">η_s &gt; 0 (default 1).</param>
    /// <param name="momentum">β in [0, 1) (default 0.9).</param>
    public FedAvgM(double serverLearningRate = 1.0, double momentum = 0.9)
    {
        ServerLearningRate = StrategyGuards.Positive(serverLearningRate, nameof(serverLearningRate));
        Momentum = StrategyGuards.UnitInterval(momentum, nameof(momentum));
    }

    /// <summary>η_s.</summary>
    public double ServerLearningRate { get; }

    /// <summary>β.</summary>
    public double Momentum { get; }

    /// <inheritdoc />
    public string Name => "fedavgm";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available)
    {
        StrategyGuards.CheckStateFits(Name, _velocity, globalModel.Length);
        return new WeightedMeanAggregator(Name, globalModel, Step);
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState()
    {
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (_velocity is not null)
        {
            state[MomentumKey] = (float[])_velocity.Clone();
        }

        return state;
    }

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        StrategyGuards.CheckState(Name, state, MomentumKey);
        _velocity = state.TryGetValue(MomentumKey, out var v) ? (float[])v.Clone() : null;
    }

    private void Step(float[] delta, float[] model)
    {
        _velocity ??= new float[delta.Length];
        // v = β v + Δ; x' = x + η_s v.
        TensorPrimitives.MultiplyAdd(_velocity, (float)Momentum, delta, _velocity);
        TensorPrimitives.MultiplyAdd(_velocity, (float)ServerLearningRate, model, model);
    }
}
