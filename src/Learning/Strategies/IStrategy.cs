namespace Federated.Learning.Strategies;

/// <summary>
/// A federated strategy, in the spirit of Flower's: it configures each round's local training and turns the
/// round's client updates (and, separately, its failures) into the next global model. It knows nothing of
/// transport, scheduling or storage: the coordinator's round loop owns those.
/// </summary>
public interface IStrategy
{
    /// <summary>Stable name (<c>fedavg</c>, <c>fedprox</c>, …) recorded in checkpoints and reports.</summary>
    string Name { get; }

    /// <summary>Key/value instructions sent to every client selected for <paramref name="round"/> (e.g. <c>proximal_mu</c>).</summary>
    IReadOnlyDictionary<string, string> ConfigureFit(int round);

    /// <summary>Named tensors sent to clients with the global model (e.g. SCAFFOLD's server control variate).</summary>
    IReadOnlyDictionary<string, float[]> ServerTensors(int round);

    /// <summary>
    /// Starts aggregating <paramref name="round"/> starting from the global model <paramref name="globalModel"/>.
    /// <paramref name="selected"/> clients were asked to train out of <paramref name="available"/> enrolled.
    /// </summary>
    IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available);

    /// <summary>The strategy's state across rounds (server optimiser moments, control variates) for checkpoints.</summary>
    IReadOnlyDictionary<string, float[]> SaveState();

    /// <summary>Restores what <see cref="SaveState"/> returned.</summary>
    void LoadState(IReadOnlyDictionary<string, float[]> state);
}

/// <summary>Collects one round's updates. Incremental aggregators fold each update in as it arrives (memory O(model)).</summary>
public interface IRoundAggregator
{
    /// <summary>True when <see cref="Add"/> folds the update in at once and keeps no reference to it.</summary>
    bool IsIncremental { get; }

    /// <summary>Number of updates added so far.</summary>
    int Count { get; }

    /// <summary>Adds one client's update; throws <see cref="ArgumentException"/> when it does not fit (length, examples).</summary>
    void Add(ClientUpdate update);

    /// <summary>Produces the next global model. Throws <see cref="InvalidOperationException"/> when no update was added.</summary>
    AggregationResult Finish(IReadOnlyList<ClientFailure> failures);
}

/// <summary>One client's contribution to a round.</summary>
public sealed class ClientUpdate
{
    /// <summary>The client (agent) id.</summary>
    public required string ClientId { get; init; }

    /// <summary>Examples the client trained on (the FedAvg weight).</summary>
    public required long NumExamples { get; init; }

    /// <summary>Local model minus the global model it started from, in the global model's layout.</summary>
    public required float[] Delta { get; init; }

    /// <summary>Optimiser steps the client took (FedNova's τ).</summary>
    public long LocalSteps { get; init; }

    /// <summary>Further named tensors (e.g. <c>scaffold.control_delta</c>).</summary>
    public IReadOnlyDictionary<string, float[]> Tensors { get; init; } = new Dictionary<string, float[]>();

    /// <summary>Client-reported metrics (loss, accuracy, seconds).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}

/// <summary>A selected client that produced no usable update, and why.</summary>
/// <param name="ClientId">The client.</param>
/// <param name="Reason">Disconnected, late, rejected payload, training error, …</param>
public sealed record ClientFailure(string ClientId, string Reason);

/// <summary>The outcome of a round's aggregation.</summary>
/// <param name="Global">The next global model.</param>
/// <param name="Accepted">Updates that went into it.</param>
/// <param name="Metrics">Aggregation metrics (e.g. weighted mean of client losses, update norm).</param>
public sealed record AggregationResult(float[] Global, int Accepted, IReadOnlyDictionary<string, double> Metrics)
{
    /// <summary>
    /// Updates the aggregator received but left out when it finished (e.g. norm outliers under
    /// <see cref="Robustness.RobustStrategy"/>), each with its reason; empty for the plain strategies.
    /// </summary>
    public IReadOnlyList<ClientFailure> Rejected { get; init; } = [];
}
