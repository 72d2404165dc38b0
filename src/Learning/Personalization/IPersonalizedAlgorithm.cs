using Federated.Learning.Strategies;
using Federated.Learning.Training;

namespace Federated.Learning.Personalization;

/// <summary>
/// Trains the agent's model once more, with <paramref name="plugins"/> and <paramref name="options"/>, on the round's
/// local data, in place (the model holds whatever the caller loaded into <see cref="ClientRound.Weights"/>).
/// </summary>
public delegate TrainingReport LocalTraining(IReadOnlyList<ITrainingPlugin> plugins, TrainingOptions options);

/// <summary>
/// The client half of a personalisation strategy (<see cref="FedPer"/>'s local head, <see cref="Ditto"/>'s personal
/// model). Besides the training hooks it decides three things, each on a whole flattened model in the global layout:
/// the model the agent uses on its own data (what its local test accuracy measures), the weights its local training
/// starts from, and, after that training, what stays on the agent and what the uploaded delta is taken from.
/// What it keeps lives in <see cref="ClientRound.LocalState"/>, which the agent persists across rounds and restarts.
/// </summary>
public interface IPersonalizedAlgorithm : IClientAlgorithm
{
    /// <summary>Turns <paramref name="model"/> (holding the round's global model) into the model this agent uses now.</summary>
    void PersonalModel(Span<float> model);

    /// <summary>Turns <paramref name="model"/> (holding the round's global model) into the weights local training starts from.</summary>
    void TrainingStart(Span<float> model);

    /// <summary>
    /// After local training: <paramref name="local"/> holds the trained model; keeps what stays local in
    /// <see cref="ClientRound.LocalState"/> and edits <paramref name="local"/> into the model the delta is taken from.
    /// <paramref name="train"/> trains <see cref="ClientRound.Weights"/> further (the caller reloads the weights after).
    /// Returns metrics to report with the update (may be empty).
    /// </summary>
    IReadOnlyDictionary<string, double> Personalize(ClientRound round, float[] local, LocalTraining train);
}
