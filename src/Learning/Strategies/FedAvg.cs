using System.Numerics.Tensors;

namespace Federated.Learning.Strategies;

/// <summary>
/// Federated averaging (McMahan et al., 2017): Δ = Σ nᵢ Δᵢ / Σ nᵢ over the clients' deltas Δᵢ = local − global,
/// and x' = x + η_s Δ with a server learning rate η_s (1 gives plain FedAvg). The aggregator is incremental:
/// each update is folded into one accumulator as it arrives.
/// </summary>
public sealed class FedAvg : IStrategy
{
    /// <summary>Creates FedAvg with server learning rate <paramref name="serverLearningRate"/>.</summary>
    public FedAvg(double serverLearningRate = 1.0)
    {
        ServerLearningRate = StrategyGuards.Positive(serverLearningRate, nameof(serverLearningRate));
    }

    /// <summary>η_s.</summary>
    public double ServerLearningRate { get; }

    /// <inheritdoc />
    public string Name => "fedavg";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) =>
        new WeightedMeanAggregator(Name, globalModel, (delta, model) => ApplyScaled(delta, model, ServerLearningRate));

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => StrategyGuards.CheckState(Name, state);

    /// <summary>model += rate × delta.</summary>
    internal static void ApplyScaled(float[] delta, float[] model, double rate) =>
        TensorPrimitives.MultiplyAdd(delta, (float)rate, model, model);
}

/// <summary>
/// FedProx (Li et al., 2020): the server side is FedAvg; every client adds μ/2 ‖w − w_global‖² to its loss
/// (<see cref="ProximalTerm"/>), told μ through the <c>proximal_mu</c> configuration key.
/// </summary>
public sealed class FedProx : IStrategy
{
    /// <summary>The configuration key carrying μ.</summary>
    public const string MuKey = "proximal_mu";

    private readonly FedAvg _server;

    /// <summary>Creates FedProx with proximal strength <paramref name="mu"/> ≥ 0 and server learning rate <paramref name="serverLearningRate"/>.</summary>
    public FedProx(double mu, double serverLearningRate = 1.0)
    {
        Mu = StrategyGuards.NonNegative(mu, nameof(mu));
        _server = new FedAvg(serverLearningRate);
    }

    /// <summary>μ.</summary>
    public double Mu { get; }

    /// <summary>η_s.</summary>
    public double ServerLearningRate => _server.ServerLearningRate;

    /// <inheritdoc />
    public string Name => "fedprox";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) =>
        new Dictionary<string, string>(StringComparer.Ordinal) { [MuKey] = StrategyGuards.Format(Mu) };

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => _server.ServerTensors(round);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) =>
        new WeightedMeanAggregator(Name, globalModel, (delta, model) => FedAvg.ApplyScaled(delta, model, ServerLearningRate));

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => _server.SaveState();

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => StrategyGuards.CheckState(Name, state);
}
