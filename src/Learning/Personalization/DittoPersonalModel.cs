using Federated.Learning.Strategies;
using Federated.Learning.Training;

namespace Federated.Learning.Personalization;

/// <summary>
/// Ditto's client half. After the round's ordinary training (the update it uploads), the agent trains its personal
/// model v (kept in <see cref="ClientRound.LocalState"/> under <see cref="StateKey"/>; the round's global model on the
/// agent's first round) on the same data with λ/2 ‖v − w_global‖² added to the loss (a <see cref="ProximalTerm"/>
/// anchored at the round's global model), for the configured epochs, and keeps it. The agent uses (and evaluates) v.
/// </summary>
public sealed class DittoPersonalModel : IPersonalizedAlgorithm
{
    /// <summary>The local-state key of the personal model (a whole flattened model).</summary>
    public const string StateKey = "ditto.personal";

    private readonly float[]? _stored;

    /// <summary>Creates the client half for <paramref name="round"/> with λ = <paramref name="lambda"/> and <paramref name="epochs"/> personal epochs (0: the round's).</summary>
    public DittoPersonalModel(ClientRound round, double lambda, int epochs)
    {
        ArgumentNullException.ThrowIfNull(round);
        Lambda = StrategyGuards.NonNegative(lambda, nameof(lambda));
        ArgumentOutOfRangeException.ThrowIfNegative(epochs);
        Epochs = epochs;
        var length = round.Weights.Layout.TotalLength;
        if (round.Global.Length != length)
        {
            throw new ArgumentException($"The global model has {round.Global.Length} floats; the client's model has {length}.", nameof(round));
        }

        _stored = round.LocalState.TryGetValue(StateKey, out var kept) && kept.Length == length ? kept : null;
    }

    /// <summary>λ.</summary>
    public double Lambda { get; }

    /// <summary>Personal epochs per round (0: the round's local epochs).</summary>
    public int Epochs { get; }

    /// <summary>True when the agent had a personal model before this round.</summary>
    public bool HasStoredModel => _stored is not null;

    /// <inheritdoc />
    public void PersonalModel(Span<float> model) => _stored?.CopyTo(model);

    /// <inheritdoc />
    public void TrainingStart(Span<float> model)
    {
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Personalize(ClientRound round, float[] local, LocalTraining train)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(train);
        round.Weights.Load(_stored ?? round.Global.ToArray());
        var options = round.Training with
        {
            Epochs = Epochs > 0 ? Epochs : round.Training.Epochs,
            MaxSteps = Epochs > 0 ? 0 : round.Training.MaxSteps,
            // Another shuffle than the global model's pass over the same data.
            Seed = unchecked(round.Training.Seed + 0x0D177),
        };
        var proximal = new ProximalTerm(round, Lambda);
        TrainingReport report;
        try
        {
            report = train([proximal], options);
        }
        finally
        {
            proximal.Complete(round, new TrainingReport([], 0, false));
        }

        if (report.Cancelled)
        {
            throw new OperationCanceledException("Ditto's personal training was cancelled.");
        }

        round.LocalState[StateKey] = round.Weights.Flatten();
        return new Dictionary<string, double>(StringComparer.Ordinal) { ["ditto_personal_loss"] = report.FinalLoss };
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> Complete(ClientRound round, TrainingReport report) =>
        new Dictionary<string, float[]>(StringComparer.Ordinal);
}
