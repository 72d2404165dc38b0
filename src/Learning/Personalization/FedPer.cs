using System.Globalization;
using Federated.Learning.Strategies;

namespace Federated.Learning.Personalization;

/// <summary>
/// FedPer (Arivazhagan et al., 2019): a shared body, aggregated by FedAvg, under a head that every agent keeps to
/// itself. The strategy tells the agents which weights form the head (<see cref="HeadKey"/> with parameter-name
/// prefixes, or <see cref="HeadLayersKey"/> with a count of last layers); their <see cref="PersonalHead"/> trains the
/// body with their own head, keeps the head in their persisted state and uploads a delta whose head entries are zero,
/// so the global head never moves from its initialisation and no agent's head ever leaves it.
/// </summary>
public sealed class FedPer : IStrategy
{
    /// <summary>The configuration key carrying the head's parameter-name prefixes (comma-separated).</summary>
    public const string HeadKey = "fedper_head";

    /// <summary>The configuration key carrying the head as a number of last layers.</summary>
    public const string HeadLayersKey = "fedper_head_layers";

    private readonly FedAvg _server;

    /// <summary>Creates FedPer with head <paramref name="head"/> and server learning rate <paramref name="serverLearningRate"/>.</summary>
    public FedPer(HeadSelection head, double serverLearningRate = 1.0)
    {
        ArgumentNullException.ThrowIfNull(head);
        Head = head;
        _server = new FedAvg(serverLearningRate);
    }

    /// <summary>The local head.</summary>
    public HeadSelection Head { get; }

    /// <summary>η_s.</summary>
    public double ServerLearningRate => _server.ServerLearningRate;

    /// <inheritdoc />
    public string Name => "fedper";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Head.Layers > 0 ? HeadLayersKey : HeadKey] = Head.Describe(),
    };

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => _server.ServerTensors(round);

    /// <inheritdoc />
    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) =>
        new WeightedMeanAggregator(Name, globalModel, (delta, model) => FedAvg.ApplyScaled(delta, model, ServerLearningRate));

    /// <inheritdoc />
    public IReadOnlyDictionary<string, float[]> SaveState() => _server.SaveState();

    /// <inheritdoc />
    public void LoadState(IReadOnlyDictionary<string, float[]> state) => StrategyGuards.CheckState(Name, state);

    /// <summary>The head a round's configuration names, or null when it names none.</summary>
    /// <exception cref="ArgumentException">Both keys, or an invalid value.</exception>
    public static HeadSelection? FromConfig(IReadOnlyDictionary<string, string> config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var hasPrefixes = config.TryGetValue(HeadKey, out var prefixes);
        var hasLayers = config.TryGetValue(HeadLayersKey, out var layers);
        if (hasPrefixes && hasLayers)
        {
            throw new ArgumentException($"Configuration '{HeadKey}' and '{HeadLayersKey}' exclude each other.", nameof(config));
        }

        if (hasLayers)
        {
            return int.TryParse(layers, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1
                ? HeadSelection.LastLayers(n)
                : throw new ArgumentException($"Configuration '{HeadLayersKey}' must be a whole number ≥ 1, not '{layers}'.", nameof(config));
        }

        return hasPrefixes ? HeadSelection.ByPrefixes(prefixes!) : null;
    }
}
