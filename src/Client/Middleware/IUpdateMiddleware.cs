using Federated.Protocol.V1;

namespace Federated.Client.Middleware;

/// <summary>
/// Client middleware, in the spirit of Flower's client mods: it sees every update the agent produces after local
/// training and before the update is sealed and uploaded, and may add metrics to it or change its model delta (clip,
/// add noise, sparsify, ...). Register implementations with
/// <see cref="Hosting.ClientServiceCollectionExtensions.AddUpdateMiddleware{T}"/>; they run in registration order, on
/// the agent's training thread, once per train task (not for secure-aggregation rounds, whose delta never leaves
/// unmasked).
/// </summary>
public interface IUpdateMiddleware
{
    /// <summary>Inspects or changes <paramref name="update"/>; an exception fails the task, as a training error does.</summary>
    void OnUpdate(UpdateContext update);
}

/// <summary>One update on its way out: the task it answers, its model delta and its metrics, all open to middleware.</summary>
public sealed class UpdateContext
{
    private float[] _delta;

    /// <summary>Wraps the update of <paramref name="task"/> trained on <paramref name="numExamples"/> examples.</summary>
    public UpdateContext(TrainTask task, float[] delta, long numExamples, IDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(delta);
        ArgumentNullException.ThrowIfNull(metrics);
        Task = task;
        _delta = delta;
        NumExamples = numExamples;
        Metrics = metrics;
    }

    /// <summary>The train task the update answers (round, model name, strategy instructions in its config).</summary>
    public TrainTask Task { get; }

    /// <summary>The federated round.</summary>
    public int Round => Task.Round;

    /// <summary>The examples the agent trained on (the weight the coordinator gives the update).</summary>
    public long NumExamples { get; }

    /// <summary>
    /// The local model minus the global model it started from, flattened in the global model's layout. Middleware may
    /// change it in place or replace it with an array of the same length.
    /// </summary>
    public float[] Delta
    {
        get => _delta;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Length != _delta.Length)
            {
                throw new ArgumentException($"The delta has {_delta.Length} elements; a replacement must have as many, not {value.Length}.", nameof(value));
            }

            _delta = value;
        }
    }

    /// <summary>The metrics the task result carries to the coordinator (train_loss, train_accuracy, ...); add your own.</summary>
    public IDictionary<string, double> Metrics { get; }
}
