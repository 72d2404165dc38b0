using Federated.Learning.Data;
using Federated.Learning.Training;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// Trains one model through a stream of experiences with continual plug-ins: <see cref="Train"/> runs the ordinary
/// <see cref="LocalTrainer"/> with the plug-ins (and a <see cref="TaskHeadPlugin"/> last when the model is a
/// <see cref="TaskHeadMask"/>), as often as the caller likes; <see cref="EndExperience"/> consolidates and advances
/// the state's experience counter. Naive fine-tuning is a learner without plug-ins.
/// </summary>
public sealed class ContinualLearner
{
    private readonly IReadOnlyList<IContinualPlugin> _plugins;
    private readonly LocalTrainer _trainer;

    /// <summary>Creates a learner for <paramref name="model"/> whose plug-ins keep their state in <paramref name="state"/>.</summary>
    public ContinualLearner(nn.Module<Tensor, Tensor> model, ContinualState state, IEnumerable<IContinualPlugin>? plugins = null, IEnumerable<ITrainingPlugin>? extraPlugins = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        Model = model;
        State = state;
        _plugins = plugins?.ToArray() ?? [];
        var all = new List<ITrainingPlugin>(_plugins);
        all.AddRange(extraPlugins ?? []);
        if (model is TaskHeadMask mask)
        {
            all.Add(new TaskHeadPlugin(mask));
        }

        _trainer = new LocalTrainer(all);
    }

    /// <summary>The model.</summary>
    public nn.Module<Tensor, Tensor> Model { get; }

    /// <summary>The continual state the plug-ins share.</summary>
    public ContinualState State { get; }

    /// <summary>The plug-ins, in registration order.</summary>
    public IReadOnlyList<IContinualPlugin> Plugins => _plugins;

    /// <summary>Trains on (part of) the current experience.</summary>
    public TrainingReport Train(TensorDataset data, TrainingOptions options, CancellationToken cancellationToken = default) =>
        _trainer.Train(Model, data, options, cancellationToken);

    /// <summary>Ends the current experience: every plug-in consolidates, the seen classes grow and the counter advances.</summary>
    public void EndExperience(TensorDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var end = new ExperienceEnd(Model, data, State.Experience);
        foreach (var plugin in _plugins)
        {
            plugin.EndExperience(end);
        }

        foreach (var label in data.Labels)
        {
            State.SeenClasses.Add(label);
        }

        State.Experience++;
    }
}
