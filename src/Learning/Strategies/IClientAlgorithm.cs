using Federated.Learning.Training;
using Federated.Learning.Weights;

namespace Federated.Learning.Strategies;

/// <summary>
/// The client half of a strategy (FedProx's proximal term, SCAFFOLD's gradient correction, FedNova's step
/// count): a training plug-in built per round from the task's configuration, which may return extra named tensors
/// to upload with the delta.
/// </summary>
public interface IClientAlgorithm : ITrainingPlugin
{
    /// <summary>Called after local training; returns tensors to upload (may be empty) and may update <see cref="ClientRound.LocalState"/>.</summary>
    IReadOnlyDictionary<string, float[]> Complete(ClientRound round, TrainingReport report);
}

/// <summary>What a client knows about the round it trains in.</summary>
public sealed class ClientRound
{
    /// <summary>The round number.</summary>
    public required int Round { get; init; }

    /// <summary>The strategy's key/value instructions.</summary>
    public required IReadOnlyDictionary<string, string> Config { get; init; }

    /// <summary>The global model the client starts from (not modified).</summary>
    public required ReadOnlyMemory<float> Global { get; init; }

    /// <summary>Tensors the server sent with the model.</summary>
    public required IReadOnlyDictionary<string, float[]> ServerTensors { get; init; }

    /// <summary>The client's model, bound to its weights (already loaded with <see cref="Global"/>).</summary>
    public required ModelWeights Weights { get; init; }

    /// <summary>The local training options of this round.</summary>
    public required TrainingOptions Training { get; init; }

    /// <summary>State the client keeps between rounds and restarts (e.g. SCAFFOLD's local control variate); the agent persists it.</summary>
    public required IDictionary<string, float[]> LocalState { get; init; }
}
