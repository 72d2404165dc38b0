using Federated.Client.Hosting;
using Federated.Learning.Continual;
using Federated.Learning.Data;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Client.Training;

/// <summary>
/// The agent's continual-learning side: its stream (cut from the local partition), the continual state (loaded from
/// and saved to the state directory's <c>continual/</c> slot) and the plug-ins. <see cref="Prepare"/> moves the state
/// to the round's experience, consolidating every experience boundary it crosses (EWC's Fisher diagonal and anchor,
/// the replay buffer, the LwF teacher, all at the global model the round starts from), and returns what the round
/// trains on. Call it from the training thread only.
/// </summary>
internal sealed class AgentContinual : IDisposable
{
    private readonly ClientContinualOptions _options;
    private readonly string _directory;
    private readonly Device _device;
    private readonly IExperienceSequence _stream;
    private List<IContinualPlugin>? _plugins;
    private ExperienceData? _current;

    /// <summary>Cuts the stream from <paramref name="data"/> (not owned) and restores the state saved in <paramref name="directory"/>, if any.</summary>
    public AgentContinual(ClientContinualOptions options, TensorDataset data, string directory, Device device)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _options = options;
        _directory = directory;
        _device = device;
        _stream = ContinualStreams.Create(options.Stream, data, data, options.Experiences, options.Seed);
        State = ContinualState.Exists(directory) ? ContinualState.Load(directory, device) : new ContinualState();
    }

    /// <summary>The continual state (experience counter, EWC terms, replay buffer, LwF teacher).</summary>
    public ContinualState State { get; }

    /// <summary>Experiences in the stream.</summary>
    public int Count => _stream.Count;

    /// <summary>The experience the agent learns in <paramref name="round"/>.</summary>
    public int ExperienceAt(int round) => ExperienceSchedule.At(round, _options.RoundsPerExperience, _options.Offset, _stream.Count);

    /// <summary>
    /// Consolidates every experience that ended before <paramref name="round"/> (with <paramref name="model"/> holding
    /// the global weights) and saves the state when it changed; returns the round's training data (owned here) and
    /// whether a boundary was crossed.
    /// </summary>
    public (TensorDataset Data, bool Consolidated) Prepare(int round, nn.Module<Tensor, Tensor> model, Func<nn.Module<Tensor, Tensor>> createModel)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(createModel);
        var plugins = Plugins(createModel);
        var target = ExperienceAt(round);
        var consolidated = false;
        while (State.Experience < target)
        {
            var ended = Open(State.Experience);
            var end = new ExperienceEnd(model, ended.Train, State.Experience);
            foreach (var plugin in plugins)
            {
                plugin.EndExperience(end);
            }

            foreach (var label in ended.Train.Labels)
            {
                State.SeenClasses.Add(label);
            }

            State.Experience++;
            consolidated = true;
        }

        if (consolidated)
        {
            Save();
        }

        return (Open(Math.Min(State.Experience, _stream.Count - 1)).Train, consolidated);
    }

    /// <summary>
    /// The plug-ins for one round's training: replay and LwF as configured, and EWC over the agent's own terms, or,
    /// when <paramref name="serverTensors"/> carry a consolidated Fisher diagonal and anchor, over that one term
    /// (the returned state owns it; dispose it after the round).
    /// </summary>
    public (IReadOnlyList<ITrainingPlugin> Plugins, IDisposable? Scratch) TrainingPlugins(IReadOnlyDictionary<string, float[]> serverTensors, WeightLayout layout, Func<nn.Module<Tensor, Tensor>> createModel)
    {
        ArgumentNullException.ThrowIfNull(serverTensors);
        ArgumentNullException.ThrowIfNull(layout);
        var plugins = Plugins(createModel);
        if (_options.Ewc is not { } ewc
            || !serverTensors.TryGetValue(FisherConsolidation.FisherKey, out var fisher)
            || !serverTensors.TryGetValue(FisherConsolidation.AnchorKey, out var anchor))
        {
            return (plugins, null);
        }

        var scratch = new ContinualState();
        scratch.AddEwcTerm(new EwcTerm(State.Experience, 0, Split(fisher, layout, _device), Split(anchor, layout, _device)));
        var result = plugins.Select(p => p is EwcPlugin ? (ITrainingPlugin)new EwcPlugin(ewc, scratch) : p).ToList();
        return (result, scratch);
    }

    /// <summary>The Fisher diagonal of the latest EWC term as a flat vector in <paramref name="layout"/> (null without one).</summary>
    public float[]? LatestFisher(WeightLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (State.EwcTerms.Count == 0)
        {
            return null;
        }

        var term = State.EwcTerms[^1];
        var flat = new float[layout.TotalLength];
        foreach (var entry in layout.Entries)
        {
            if (term.Fisher.TryGetValue(entry.Name, out var tensor))
            {
                using var host = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
                host.data<float>().CopyTo(flat.AsSpan((int)entry.Offset, (int)entry.Length));
            }
        }

        return flat;
    }

    /// <summary>Saves the state into the <c>continual/</c> slot (crash-safely).</summary>
    public void Save() => State.Save(_directory);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_plugins is not null)
        {
            foreach (var plugin in _plugins)
            {
                (plugin as IDisposable)?.Dispose();
            }
        }

        _current?.Dispose();
        _current = null;
        _stream.Dispose();
        State.Dispose();
    }

    private List<IContinualPlugin> Plugins(Func<nn.Module<Tensor, Tensor>> createModel)
    {
        if (_plugins is not null)
        {
            return _plugins;
        }

        var plugins = new List<IContinualPlugin>();
        if (_options.Ewc is { } ewc)
        {
            plugins.Add(new EwcPlugin(ewc, State));
        }

        if (_options.Replay is { } replay)
        {
            plugins.Add(new ReplayPlugin(replay, State));
        }

        if (_options.Lwf is { } lwf)
        {
            plugins.Add(new LwfPlugin(lwf, State, createModel));
        }

        return _plugins = plugins;
    }

    private ExperienceData Open(int index)
    {
        if (_current is { } current && current.Index == index)
        {
            return current;
        }

        _current?.Dispose();
        _current = null;
        _current = _stream.Open(index);
        return _current;
    }

    private static Dictionary<string, Tensor> Split(float[] flat, WeightLayout layout, Device device)
    {
        if (flat.Length != layout.TotalLength)
        {
            throw new InvalidOperationException($"A consolidated tensor of {flat.Length} values does not fit the model's {layout.TotalLength}.");
        }

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var entry in layout.Entries.Where(e => e.Kind == WeightKind.Parameter))
        {
            result[entry.Name] = torch.tensor(flat.AsSpan((int)entry.Offset, (int)entry.Length).ToArray(), [.. entry.Shape], device: device).DetachFromDisposeScope();
        }

        return result;
    }
}
