using System.Numerics.Tensors;

namespace Federated.Learning.Strategies;

/// <summary>
/// FedNova (Wang et al., "Tackling the Objective Inconsistency Problem in Heterogeneous Federated Optimization",
/// 2020): every client's delta is normalised by its number of effective local steps before averaging, so clients
/// that ran more steps do not drag the model towards their own optimum. With client SGD momentum ρ and τᵢ local
/// steps (<see cref="ClientUpdate.LocalSteps"/>):
/// aᵢ = τᵢ for ρ = 0, else aᵢ = [τᵢ − ρ(1 − ρ^τᵢ)/(1 − ρ)] / (1 − ρ); pᵢ = nᵢ / Σ n; dᵢ = Δᵢ / aᵢ;
/// τ_eff = Σ pᵢ aᵢ; Δ = τ_eff Σ pᵢ dᵢ; x' = x + η_s Δ. The aggregator folds nᵢ Δᵢ / aᵢ, nᵢ aᵢ and nᵢ as updates
/// arrive and normalises in <see cref="IRoundAggregator.Finish"/>. Clients need no plug-in: τᵢ is
/// <see cref="Training.TrainingReport.Steps"/>.
/// </summary>
public sealed class FedNova : IStrategy
{
    /// <summary>The configuration key that tells clients the momentum the server assumes.</summary>
    public const string MomentumKey = "fednova.momentum";

    /// <summary>Creates FedNova.</summary>
    /// <param name="clientMomentum">ρ, the clients' SGD momentum, in [0, 1) (default 0).</param>
    /// <param name="serverLearningRate">η_s &gt; 0 (default 1).</param>
    public FedNova(double clientMomentum = 0, double serverLearningRate = 1.0)
    {
        ClientMomentum = StrategyGuards.UnitInterval(clientMomentum, nameof(clientMomentum));
        ServerLearningRate = StrategyGuards.Positive(serverLearningRate, nameof(serverLearningRate));
    }

    /// <summary>ρ.</summary>
    public double ClientMomentum { get; }

    /// <summary>η_s.</summary>
    public double ServerLearningRate { get; }

    /// <inheritdoc />
    public string Name => "fednova";

    /// <summary>aᵢ, the normaliser for <paramref name="steps"/> local steps with momentum <paramref name="momentum"/>.</summary>
    public static double NormalizingFactor(long steps, double momentum)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        if (momentum == 0)
        {
            return steps;
        }

        return (steps - (momentum * (1 - Math.Pow(momentum, steps)) / (1 - momentum))) / (1 - momentum);
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) =>
        new Dictionary<string, string>(StringComparer.Ordinal) { [MomentumKey] = StrategyGuards.Format(ClientMomentum) };

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) => new Aggregator(this, globalModel);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => StrategyGuards.CheckState(Name, state);

    private sealed class Aggregator(FedNova owner, ReadOnlyMemory<float> globalModel) : RoundAggregatorBase(owner.Name, globalModel)
    {
        private readonly float[] _normalisedSum = new float[globalModel.Length];
        private double _weightedSteps;
        private double _examples;

        protected override void ValidateMore(ClientUpdate update)
        {
            if (update.LocalSteps < 1)
            {
                throw new ArgumentException($"fednova: client '{update.ClientId}' reports {update.LocalSteps} local steps; FedNova needs at least 1.", nameof(update));
            }
        }

        protected override void Fold(ClientUpdate update)
        {
            var a = NormalizingFactor(update.LocalSteps, owner.ClientMomentum);
            TensorPrimitives.MultiplyAdd(update.Delta, (float)(update.NumExamples / a), _normalisedSum, _normalisedSum);
            _weightedSteps += update.NumExamples * a;
            _examples += update.NumExamples;
        }

        protected override float[] Complete(Dictionary<string, double> metrics)
        {
            // τ_eff = Σ nᵢ aᵢ / Σ n; Δ = τ_eff · (Σ nᵢ Δᵢ / aᵢ) / Σ n.
            var tauEff = _weightedSteps / _examples;
            TensorPrimitives.Multiply(_normalisedSum, (float)(tauEff / _examples), _normalisedSum);
            RecordNorm(metrics, _normalisedSum);
            metrics["tau_eff"] = tauEff;
            var model = CopyGlobal();
            TensorPrimitives.MultiplyAdd(_normalisedSum, (float)owner.ServerLearningRate, model, model);
            return model;
        }
    }
}
