using System.Globalization;
using System.Numerics.Tensors;
using Federated.Learning.Strategies;

namespace Federated.Learning.Privacy;

/// <summary>
/// Client-level differential privacy around any strategy (DP-FedAvg: McMahan, Ramage, Talwar and Zhang 2018, with
/// the adaptive clipping of Andrew et al. 2021). Each round it clips every update to the L2 bound C (or trusts the
/// agents to, <see cref="DifferentialPrivacyOptions.ClipOnAgents"/>), sums the clipped updates with equal weight,
/// adds Gaussian noise N(0, (z_Δ C)²) to every coordinate of the sum, divides by the expected number of participants
/// m = q × enrolled, and hands that one noised mean to the inner strategy's aggregator as the round's only update,
/// so server optimisers (FedAvgM, FedAdam, …) run on top of the private mean. Memory is O(model): the clipped sum
/// is folded in as updates arrive.
/// <para>
/// The guarantee assumes Poisson sampling with rate q (<see cref="DifferentialPrivacyOptions.SampleRate"/>): the
/// scheduler must select each enrolled client independently with probability q, without over-selection or
/// replacement of dropouts. Every finished round records one (q, z) step in <see cref="Ledger"/>; with
/// <see cref="DifferentialPrivacyOptions.EpsilonBudget"/> set, <see cref="IStrategy.BeginRound"/> refuses a round
/// that would exceed it. The clients' reported metrics (loss, accuracy, the raw clipped fraction) are averaged
/// as usual and are outside the guarantee; only the model is protected.
/// </para>
/// <para>
/// Noise: round r draws from stream (r, attempt) of <c>noise</c>'s key, so a repeated round never reuses noise and
/// a seeded simulation is reproducible across restarts. See <see cref="ChaCha20Random"/> for the floating-point caveat.
/// </para>
/// </summary>
public sealed class DifferentialPrivacyStrategy : IStrategy
{
    /// <summary>The state key of the adaptive clipping bound (one float).</summary>
    public const string ClipBoundStateKey = "dp.clip_bound";

    private const string AggregateClientId = "dp-aggregate";

    private readonly ChaCha20Random _noise;
    private readonly Dictionary<int, uint> _attempts = [];

    /// <summary>Wraps <paramref name="inner"/>; noise comes from <paramref name="noise"/>'s key, the spent budget goes to <paramref name="ledger"/> (a fresh one when null).</summary>
    public DifferentialPrivacyStrategy(IStrategy inner, DifferentialPrivacyOptions options, ChaCha20Random noise, PrivacyLedger? ledger = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(noise);
        options.Validate();
        Inner = inner;
        Options = options;
        _noise = noise;
        Ledger = ledger ?? new PrivacyLedger();

        // Kept float-representable, so that saving it in the float state and loading it back is exact.
        ClipBound = (float)options.ClipBound;
    }

    /// <summary>The wrapped strategy.</summary>
    public IStrategy Inner { get; }

    /// <summary>The settings.</summary>
    public DifferentialPrivacyOptions Options { get; }

    /// <summary>The privacy spent so far (persist it with the round state: <see cref="PrivacyLedger.ToJson"/>).</summary>
    public PrivacyLedger Ledger { get; }

    /// <summary>The clipping bound C of the next round (moves each round with adaptive clipping).</summary>
    public double ClipBound { get; private set; }

    /// <inheritdoc />
    public string Name => $"dp-{Inner.Name}";

    /// <summary>ε spent so far at <see cref="DifferentialPrivacyOptions.Delta"/>.</summary>
    public PrivacySpent Spent => Ledger.Spent(Options.Delta);

    /// <summary>True when one more round would take ε above <see cref="DifferentialPrivacyOptions.EpsilonBudget"/> (never without a budget).</summary>
    public bool NextRoundExceedsBudget =>
        Options.EpsilonBudget is { } budget && Ledger.WouldExceed(budget, Options.Delta, Options.SampleRate, Options.NoiseMultiplier);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round)
    {
        var configuration = new Dictionary<string, string>(Inner.ConfigureFit(round), StringComparer.Ordinal);
        if (Options.ClipOnAgents)
        {
            configuration[AgentClipping.BoundKey] = ClipBound.ToString("R", CultureInfo.InvariantCulture);
        }

        return configuration;
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => Inner.ServerTensors(round);

    /// <summary>
    /// Starts round <paramref name="round"/>; <paramref name="available"/> is the number of enrolled clients the
    /// Poisson sample was drawn from. Throws <see cref="InvalidOperationException"/> when the round would exceed the
    /// ε budget, and <see cref="NotSupportedException"/> when the inner strategy cannot take a single aggregated update.
    /// </summary>
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available)
    {
        if (NextRoundExceedsBudget)
        {
            throw new InvalidOperationException(
                $"Round {round} would take ε above the budget {Options.EpsilonBudget} at δ = {Options.Delta} (spent so far: {Spent.Epsilon:G6} over {Ledger.Steps} rounds).");
        }

        var expected = Options.SampleRate * available;
        if (!(expected > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(available), available, "The expected number of participants q × enrolled must be positive.");
        }

        var inner = Inner.BeginRound(round, globalModel, selected, available);
        if (inner is IUpdateValidator validator)
        {
            try
            {
                validator.Validate(Aggregate(new float[globalModel.Length]));
            }
            catch (ArgumentException e)
            {
                throw new NotSupportedException($"Strategy '{Inner.Name}' cannot run under differential privacy: it needs more than one aggregated delta per round ({e.Message})", e);
            }
        }

        _attempts.TryGetValue(round, out var attempt);
        _attempts[round] = attempt + 1;
        var stream = ((ulong)(uint)round << 32) | attempt;
        var plan = new RoundPlan(ClipBound, Options.UpdateNoiseMultiplier, expected);
        return new DifferentialPrivacyAggregator(this, plan, globalModel, inner, _noise.WithStream(stream));
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState()
    {
        var state = new Dictionary<string, float[]>(Inner.SaveState(), StringComparer.Ordinal);
        if (Options.Adaptive is not null)
        {
            state[ClipBoundStateKey] = [(float)ClipBound];
        }

        return state;
    }

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var inner = new Dictionary<string, float[]>(state, StringComparer.Ordinal);
        if (inner.Remove(ClipBoundStateKey, out var bound))
        {
            if (Options.Adaptive is null)
            {
                throw new ArgumentException($"{Name}: the state has an adaptive clipping bound '{ClipBoundStateKey}' but this run clips at a fixed bound.", nameof(state));
            }

            if (bound.Length != 1 || !(bound[0] > 0) || !float.IsFinite(bound[0]))
            {
                throw new ArgumentException($"{Name}: '{ClipBoundStateKey}' must be one positive finite float.", nameof(state));
            }

            ClipBound = bound[0];
        }

        Inner.LoadState(inner);
    }

    /// <summary>The pseudo-update that carries the round's noised mean to the inner aggregator.</summary>
    internal static ClientUpdate Aggregate(float[] delta) => new()
    {
        ClientId = AggregateClientId,
        NumExamples = 1,
        Delta = delta,
        LocalSteps = 1,
    };

    /// <summary>
    /// Called once per round when the noised sum exists: charges the ledger one (q, z) step, moves an adaptive bound,
    /// and adds the privacy metrics.
    /// </summary>
    internal void Release(RoundPlan plan, int participants, int unclipped, ChaCha20Random noise, Dictionary<string, double> metrics)
    {
        Ledger.Record(Options.SampleRate, Options.NoiseMultiplier);
        metrics["dp_sample_rate"] = Options.SampleRate;
        metrics["dp_noise_multiplier"] = Options.NoiseMultiplier;
        metrics["dp_update_noise_multiplier"] = plan.UpdateNoiseMultiplier;
        metrics["dp_clip_bound"] = plan.ClipBound;
        metrics["dp_expected_participants"] = plan.ExpectedParticipants;
        metrics["dp_noise_stddev"] = plan.UpdateNoiseMultiplier * plan.ClipBound / plan.ExpectedParticipants;
        if (participants > 0)
        {
            metrics["dp_clipped_fraction"] = (participants - unclipped) / (double)participants;
        }
        if (Options.Adaptive is { } adaptive)
        {
            var fraction = adaptive.NoisedUnclippedFraction(unclipped, participants, plan.ExpectedParticipants, noise);
            ClipBound = (float)adaptive.NextBound(plan.ClipBound, fraction);
            metrics["dp_unclipped_fraction_noised"] = fraction;
            metrics["dp_next_clip_bound"] = ClipBound;
        }

        var spent = Spent;
        metrics["dp_epsilon"] = spent.Epsilon;
        metrics["dp_delta"] = Options.Delta;
        metrics["dp_order"] = spent.Order;
    }
}

/// <summary>One round's fixed parameters: the bound C, the update's noise multiplier z_Δ and the expected participants m.</summary>
internal sealed record RoundPlan(double ClipBound, double UpdateNoiseMultiplier, double ExpectedParticipants);

/// <summary>
/// Folds clipped updates into one float32 sum as they arrive; at <see cref="RoundAggregatorBase.Finish"/> adds the
/// noise, divides by m and lets the inner aggregator turn the noised mean into the next model.
/// </summary>
internal sealed class DifferentialPrivacyAggregator(
    DifferentialPrivacyStrategy owner,
    RoundPlan plan,
    ReadOnlyMemory<float> globalModel,
    IRoundAggregator inner,
    ChaCha20Random noise)
    : RoundAggregatorBase(owner.Name, globalModel)
{
    // Agents clip with a 1e-6 margin; anything more than 1e-5 above the bound was not clipped to it.
    private const double AgentTolerance = 1e-5;

    private static readonly HashSet<string> OwnMetrics = new(StringComparer.Ordinal) { "accepted", "failures", "examples", "loss", "accuracy" };

    private readonly float[] _sum = new float[globalModel.Length];
    private int _unclipped;

    /// <summary>
    /// A round with no update (an empty Poisson sample, or every sampled agent failing or rejected) still releases:
    /// the noise alone, charged like any round. Releasing nothing instead would make the release itself depend on
    /// whether the sampled agents' updates were usable, which the accountant does not cover (Opacus likewise noises an
    /// empty Poisson batch).
    /// </summary>
    protected override bool CompletesWithoutUpdates => true;

    protected override void ValidateMore(ClientUpdate update)
    {
        if (!owner.Options.ClipOnAgents)
        {
            return;
        }

        var norm = L2Clipping.Norm(update.Delta);
        if (norm > plan.ClipBound * (1 + AgentTolerance))
        {
            throw new ArgumentException($"{Strategy}: client '{update.ClientId}' sent an update of L2 norm {norm:G6} above the clipping bound {plan.ClipBound:G6}; agents must clip (configuration key '{AgentClipping.BoundKey}').", nameof(update));
        }

        if (owner.Options.Adaptive is not null && !(update.Metrics.TryGetValue(AgentClipping.ClippedMetric, out var clipped) && clipped is 0 or 1))
        {
            throw new ArgumentException($"{Strategy}: client '{update.ClientId}' did not report '{AgentClipping.ClippedMetric}' (0 or 1), which adaptive clipping needs.", nameof(update));
        }
    }

    protected override void Fold(ClientUpdate update)
    {
        // Agent-clipped updates within the tolerance are rescaled onto the bound too, so the sensitivity is exactly C.
        var clip = L2Clipping.Measure(update.Delta, plan.ClipBound);
        TensorPrimitives.MultiplyAdd(update.Delta, (float)clip.Factor, _sum, _sum);
        var unclipped = owner.Options.ClipOnAgents ? update.Metrics.GetValueOrDefault(AgentClipping.ClippedMetric) == 0 : !clip.Clipped;
        if (unclipped)
        {
            _unclipped++;
        }
    }

    protected override float[] Complete(Dictionary<string, double> metrics)
    {
        noise.AddGaussian(_sum, plan.UpdateNoiseMultiplier * plan.ClipBound);
        TensorPrimitives.Multiply(_sum, (float)(1 / plan.ExpectedParticipants), _sum);
        owner.Release(plan, Count, _unclipped, noise, metrics);

        inner.Add(DifferentialPrivacyStrategy.Aggregate(_sum));
        var result = inner.Finish([]);
        foreach (var (key, value) in result.Metrics)
        {
            if (!OwnMetrics.Contains(key))
            {
                metrics[key] = value;
            }
        }

        return result.Global;
    }
}
