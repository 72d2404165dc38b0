using Federated.Learning.Strategies;
using Federated.Learning.Training;
using Federated.Learning.Weights;

namespace Federated.Learning.Personalization;

/// <summary>
/// FedPer's client half. The agent's head (the weights <see cref="HeadSelection"/> names) lives in
/// <see cref="ClientRound.LocalState"/> under <see cref="StateKey"/>: local training starts from the global body
/// under that head (the global head on the agent's first round), and afterwards the trained head is kept there and
/// the head entries of the uploaded delta are zero, so the head never leaves the agent and the coordinator's
/// weighted mean leaves the global head where it was. The agent uses (and evaluates) the global body under its head.
/// </summary>
public sealed class PersonalHead : IPersonalizedAlgorithm
{
    /// <summary>The local-state key of the agent's head (the head entries, concatenated in layout order).</summary>
    public const string StateKey = "fedper.head";

    private readonly IReadOnlyList<WeightEntry> _head;
    private readonly ReadOnlyMemory<float> _global;
    private readonly float[]? _stored;

    /// <summary>Resolves <paramref name="selection"/> against <paramref name="round"/>'s model and reads the kept head, if any.</summary>
    /// <exception cref="ArgumentException">The head does not fit the model.</exception>
    public PersonalHead(ClientRound round, HeadSelection selection)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(selection);
        var layout = round.Weights.Layout;
        if (round.Global.Length != layout.TotalLength)
        {
            throw new ArgumentException($"The global model has {round.Global.Length} floats; the client's model has {layout.TotalLength}.", nameof(round));
        }

        _head = selection.Resolve(layout);
        _global = round.Global;
        // A kept head of another length belongs to another head specification: the agent starts a new one from the global head.
        _stored = round.LocalState.TryGetValue(StateKey, out var kept) && kept.Length == HeadSelection.Length(_head) ? kept : null;
    }

    /// <summary>The head's entries.</summary>
    public IReadOnlyList<WeightEntry> Head => _head;

    /// <summary>True when the agent had a head of its own before this round.</summary>
    public bool HasStoredHead => _stored is not null;

    /// <inheritdoc />
    public void PersonalModel(Span<float> model) => TrainingStart(model);

    /// <inheritdoc />
    public void TrainingStart(Span<float> model)
    {
        if (_stored is not null)
        {
            HeadSelection.Insert(_head, _stored, model);
        }
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Personalize(ClientRound round, float[] local, LocalTraining train)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(local);
        round.LocalState[StateKey] = HeadSelection.Extract(_head, local);
        // The head's delta entries are zero: what is uploaded is the body's update only.
        HeadSelection.Insert(_head, HeadSelection.Extract(_head, _global.Span), local);
        return new Dictionary<string, double>(StringComparer.Ordinal) { ["fedper_head_floats"] = HeadSelection.Length(_head) };
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> Complete(ClientRound round, TrainingReport report) =>
        new Dictionary<string, float[]>(StringComparer.Ordinal);
}
