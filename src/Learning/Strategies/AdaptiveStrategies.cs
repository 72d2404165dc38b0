using System.Numerics.Tensors;

namespace Federated.Learning.Strategies;

/// <summary>
/// Hyper-parameters of the adaptive server optimisers (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
/// Algorithm 2). Defaults follow Flower's FedAdagrad/FedAdam: η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-9.
/// </summary>
public sealed record AdaptiveOptions
{
    /// <summary>Server learning rate η (Flower's <c>eta</c>).</summary>
    public double Eta { get; init; } = 0.1;

    /// <summary>First-moment decay β1 in [0, 1).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Second-moment decay β2 in [0, 1) (unused by FedAdagrad).</summary>
    public double Beta2 { get; init; } = 0.99;

    /// <summary>Adaptivity τ &gt; 0, added to √v in the denominator.</summary>
    public double Tau { get; init; } = 1e-9;

    /// <summary>
    /// The initial second moment v₋₁. Null (the default) gives τ², as in the paper (v₋₁ ≥ τ²); Flower starts from
    /// 0. With the default τ the difference is 1e-18 and invisible in float32.
    /// </summary>
    public double? InitialVariance { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        StrategyGuards.Positive(Eta, nameof(Eta));
        StrategyGuards.UnitInterval(Beta1, nameof(Beta1));
        StrategyGuards.UnitInterval(Beta2, nameof(Beta2));
        StrategyGuards.Positive(Tau, nameof(Tau));
        if (InitialVariance is { } v)
        {
            StrategyGuards.NonNegative(v, nameof(InitialVariance));
        }
    }
}

/// <summary>Which second-moment rule an <see cref="AdaptiveServer"/> uses.</summary>
internal enum AdaptiveRule
{
    Adagrad,
    Adam,
    Yogi,
}

/// <summary>
/// The shared server optimiser of FedAdagrad/FedAdam/FedYogi, on the weighted mean delta Δ:
/// m ← β1 m + (1−β1) Δ; v ← v + Δ² (Adagrad), β2 v + (1−β2) Δ² (Adam) or v − (1−β2) Δ² sign(v − Δ²) (Yogi);
/// x' = x + η m / (√v + τ). No bias correction, as in the paper's Algorithm 2.
/// </summary>
internal sealed class AdaptiveServer(string name, AdaptiveRule rule, AdaptiveOptions options)
{
    private float[]? _m;
    private float[]? _v;

    public string MKey => $"{name}.m";

    public string VKey => $"{name}.v";

    public IRoundAggregator BeginRound(ReadOnlyMemory<float> globalModel)
    {
        StrategyGuards.CheckStateFits(name, _m, globalModel.Length);
        return new WeightedMeanAggregator(name, globalModel, Step);
    }

    public IReadOnlyDictionary<string, float[]> SaveState()
    {
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (_m is not null && _v is not null)
        {
            state[MKey] = (float[])_m.Clone();
            state[VKey] = (float[])_v.Clone();
        }

        return state;
    }

    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        StrategyGuards.CheckState(name, state, MKey, VKey);
        if (state.Count == 0)
        {
            _m = null;
            _v = null;
            return;
        }

        if (TensorPrimitives.Min<float>(state[VKey]) < 0)
        {
            throw new ArgumentException($"{name}: the second moment '{VKey}' has negative values.", nameof(state));
        }

        _m = (float[])state[MKey].Clone();
        _v = (float[])state[VKey].Clone();
    }

    private void Step(float[] delta, float[] model)
    {
        if (_m is null || _v is null)
        {
            _m = new float[delta.Length];
            _v = new float[delta.Length];
            var tau = options.Tau;
            Array.Fill(_v, (float)(options.InitialVariance ?? tau * tau));
        }

        // m = β1 m + (1 − β1) Δ
        TensorPrimitives.Multiply(_m, (float)options.Beta1, _m);
        TensorPrimitives.MultiplyAdd(delta, (float)(1 - options.Beta1), _m, _m);

        var scratch = new float[delta.Length];
        TensorPrimitives.Multiply(delta, delta, scratch); // Δ²
        switch (rule)
        {
            case AdaptiveRule.Adagrad:
                TensorPrimitives.Add(_v, scratch, _v);
                break;
            case AdaptiveRule.Adam:
                TensorPrimitives.Multiply(_v, (float)options.Beta2, _v);
                TensorPrimitives.MultiplyAdd(scratch, (float)(1 - options.Beta2), _v, _v);
                break;
            case AdaptiveRule.Yogi:
                var oneMinusBeta2 = (float)(1 - options.Beta2);
                for (var i = 0; i < _v.Length; i++)
                {
                    var square = scratch[i];
                    _v[i] -= oneMinusBeta2 * square * MathF.Sign(_v[i] - square);
                }

                break;
            default:
                throw new InvalidOperationException($"Unknown adaptive rule {rule}.");
        }

        // x' = x + η m / (√v + τ)
        TensorPrimitives.Sqrt(_v, scratch);
        TensorPrimitives.Add(scratch, (float)options.Tau, scratch);
        TensorPrimitives.Divide(_m, scratch, scratch);
        TensorPrimitives.MultiplyAdd(scratch, (float)options.Eta, model, model);
    }
}

/// <summary>
/// FedAdagrad (Reddi et al., 2021, Algorithm 2): m ← β1 m + (1−β1) Δ, v ← v + Δ², x' = x + η m / (√v + τ),
/// with v starting at τ² (the paper; Flower starts from 0) and no bias correction. State: <c>fedadagrad.m</c>, <c>fedadagrad.v</c>.
/// </summary>
public sealed class FedAdagrad : IStrategy
{
    private readonly AdaptiveServer _server;

    /// <summary>Creates FedAdagrad with <paramref name="options"/> (defaults when null).</summary>
    public FedAdagrad(AdaptiveOptions? options = null)
    {
        Options = options ?? new AdaptiveOptions();
        Options.Validate();
        _server = new AdaptiveServer(Name, AdaptiveRule.Adagrad, Options);
    }

    /// <summary>The hyper-parameters.</summary>
    public AdaptiveOptions Options { get; }

    /// <inheritdoc />
    public string Name => "fedadagrad";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) => _server.BeginRound(globalModel);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => _server.SaveState();

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => _server.LoadState(state);
}

/// <summary>
/// FedAdam (Reddi et al., 2021, Algorithm 2): m ← β1 m + (1−β1) Δ, v ← β2 v + (1−β2) Δ², x' = x + η m / (√v + τ),
/// v starting at τ², no bias correction (the paper's algorithm; recent Flower releases scale η by Adam's bias
/// correction, which this class does not). State: <c>fedadam.m</c>, <c>fedadam.v</c>.
/// </summary>
public sealed class FedAdam : IStrategy
{
    private readonly AdaptiveServer _server;

    /// <summary>Creates FedAdam with <paramref name="options"/> (defaults when null).</summary>
    public FedAdam(AdaptiveOptions? options = null)
    {
        Options = options ?? new AdaptiveOptions();
        Options.Validate();
        _server = new AdaptiveServer(Name, AdaptiveRule.Adam, Options);
    }

    /// <summary>The hyper-parameters.</summary>
    public AdaptiveOptions Options { get; }

    /// <inheritdoc />
    public string Name => "fedadam";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) => _server.BeginRound(globalModel);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => _server.SaveState();

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => _server.LoadState(state);
}

/// <summary>
/// FedYogi (Reddi et al., 2021, Algorithm 2): m ← β1 m + (1−β1) Δ, v ← v − (1−β2) Δ² sign(v − Δ²),
/// x' = x + η m / (√v + τ), v starting at τ², no bias correction. State: <c>fedyogi.m</c>, <c>fedyogi.v</c>.
/// </summary>
public sealed class FedYogi : IStrategy
{
    private readonly AdaptiveServer _server;

    /// <summary>Creates FedYogi with <paramref name="options"/> (defaults when null).</summary>
    public FedYogi(AdaptiveOptions? options = null)
    {
        Options = options ?? new AdaptiveOptions();
        Options.Validate();
        _server = new AdaptiveServer(Name, AdaptiveRule.Yogi, Options);
    }

    /// <summary>The hyper-parameters.</summary>
    public AdaptiveOptions Options { get; }

    /// <inheritdoc />
    public string Name => "fedyogi";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>(StringComparer.Ordinal);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) => _server.BeginRound(globalModel);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => _server.SaveState();

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => _server.LoadState(state);
}
