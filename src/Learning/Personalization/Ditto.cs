using System.Globalization;
using Federated.Learning.Strategies;

namespace Federated.Learning.Personalization;

/// <summary>
/// Ditto (Li et al., 2021): the global model is FedAvg's (every agent trains it as usual and uploads that update);
/// besides, each agent trains a personal model v on its own data with the proximal term λ/2 ‖v − w_global‖² for
/// <see cref="PersonalEpochs"/> epochs (<see cref="DittoPersonalModel"/>), keeps v in its persisted state across
/// rounds and restarts, and uses v on its own data. λ travels as <see cref="LambdaKey"/>, the epochs as
/// <see cref="EpochsKey"/>.
/// </summary>
public sealed class Ditto : IStrategy
{
    /// <summary>The configuration key carrying λ.</summary>
    public const string LambdaKey = "ditto_lambda";

    /// <summary>The configuration key carrying the personal model's local epochs (0: the round's local epochs).</summary>
    public const string EpochsKey = "ditto_epochs";

    private readonly FedAvg _server;

    /// <summary>Creates Ditto with λ = <paramref name="lambda"/> ≥ 0, <paramref name="personalEpochs"/> ≥ 0 and server learning rate <paramref name="serverLearningRate"/>.</summary>
    public Ditto(double lambda, int personalEpochs = 0, double serverLearningRate = 1.0)
    {
        Lambda = StrategyGuards.NonNegative(lambda, nameof(lambda));
        PersonalEpochs = personalEpochs is >= 0 and <= 10_000
            ? personalEpochs
            : throw new ArgumentOutOfRangeException(nameof(personalEpochs), personalEpochs, "personal_epochs must be between 0 (the round's local epochs) and 10000.");
        _server = new FedAvg(serverLearningRate);
    }

    /// <summary>λ.</summary>
    public double Lambda { get; }

    /// <summary>Local epochs of the personal model per round (0: as many as the round's local training).</summary>
    public int PersonalEpochs { get; }

    /// <summary>η_s.</summary>
    public double ServerLearningRate => _server.ServerLearningRate;

    /// <inheritdoc />
    public string Name => "ditto";

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [LambdaKey] = StrategyGuards.Format(Lambda),
        [EpochsKey] = PersonalEpochs.ToString(CultureInfo.InvariantCulture),
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

    /// <summary>λ and the personal epochs a round's configuration names, or null when it names no λ.</summary>
    /// <exception cref="ArgumentException">An invalid value, or epochs without λ.</exception>
    public static (double Lambda, int Epochs)? FromConfig(IReadOnlyDictionary<string, string> config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.TryGetValue(LambdaKey, out var text))
        {
            return config.ContainsKey(EpochsKey)
                ? throw new ArgumentException($"Configuration '{EpochsKey}' needs '{LambdaKey}'.", nameof(config))
                : null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var lambda) || !(lambda >= 0) || !double.IsFinite(lambda))
        {
            throw new ArgumentException($"Configuration '{LambdaKey}' must be a non-negative number, not '{text}'.", nameof(config));
        }

        var epochs = 0;
        if (config.TryGetValue(EpochsKey, out var epochsText)
            && (!int.TryParse(epochsText, NumberStyles.None, CultureInfo.InvariantCulture, out epochs) || epochs > 10_000))
        {
            throw new ArgumentException($"Configuration '{EpochsKey}' must be a whole number between 0 and 10000, not '{epochsText}'.", nameof(config));
        }

        return (lambda, epochs);
    }
}
