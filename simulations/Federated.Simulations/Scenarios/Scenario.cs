using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Federated.Learning.Data.Partitioning;
using Federated.Learning.Models;
using Federated.Learning.Strategies;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// A simulation scenario, read from JSON (camelCase keys; an unknown key is an error). Later capabilities add their
/// own sections here (attackers, compression, privacy, secure aggregation, task streams).
/// </summary>
public sealed class Scenario
{
    /// <summary>A short name for reports.</summary>
    public string Name { get; set; } = "scenario";

    /// <summary>Where the clients' data comes from and how it is split.</summary>
    public DataSection Data { get; set; } = new();

    /// <summary>Clients in the federation.</summary>
    public int Clients { get; set; } = 4;

    /// <summary>Clients asked to train each round (0 = all).</summary>
    public int SampledPerRound { get; set; }

    /// <summary>Fewest results a round may aggregate (0 = half the sampled clients, at least 1).</summary>
    public int MinResults { get; set; }

    /// <summary>Model architecture: mlp, cnn, simple-cnn, resnet8.</summary>
    public string Model { get; set; } = "cnn";

    /// <summary>The strategy and its options.</summary>
    public StrategySection Strategy { get; set; } = new();

    /// <summary>Local training each round.</summary>
    public TrainingSection Training { get; set; } = new();

    /// <summary>Rounds to run.</summary>
    public int Rounds { get; set; } = 3;

    /// <summary>Seconds a round waits for results.</summary>
    public double RoundDeadlineSeconds { get; set; } = 600;

    /// <summary>Seed for the partition, the initial model, sampling and local training.</summary>
    public long Seed { get; set; } = 1;

    /// <summary>
    /// <c>in-process</c> (agents as hosts in this process, real gRPC on loopback), <c>multi-process</c> (one process
    /// per agent) or <c>virtual</c> (in-process, but only the sampled agents are materialised, from a bounded pool,
    /// their state restored from disk: large federations).
    /// </summary>
    public string Mode { get; set; } = "in-process";

    /// <summary>Virtual-client settings (mode <c>virtual</c>).</summary>
    public VirtualSection Virtual { get; set; } = new();

    /// <summary>libtorch threads per agent (agents share the machine's cores).</summary>
    public int AgentThreads { get; set; } = 1;

    /// <summary>Probability that an agent silently drops a training task (a device that vanishes mid-round).</summary>
    public double Dropout { get; set; }

    /// <summary>Slow agents: a fraction of the clients (chosen by the seed) trains this many times slower.</summary>
    public StragglerSection Stragglers { get; set; } = new();

    /// <summary>Sum results in agent-id order, so the same seed gives the same model whatever the arrival order.</summary>
    public bool Deterministic { get; set; }

    /// <summary>Fraction of agents asked to evaluate each new global model on their own data (0 = off).</summary>
    public double FederatedEvaluationFraction { get; set; }

    /// <summary>Client-level differential privacy (Poisson sampling, clipping, noise, ε accounting); null = off.</summary>
    public PrivacySection? Privacy { get; set; }
    /// <summary>Compressed uploads and downloads (codecs, error feedback); dense float32 both ways by default.</summary>
    public CompressionSection Compression { get; set; } = new();
    /// <summary>Byzantine agents: which attack, how many of the clients, from which round (none unless set).</summary>
    public AttackSection Attack { get; set; } = new();

    /// <summary>Federated continual learning: the agents' streams, plug-ins and Fisher consolidation; null = off.</summary>
    public ContinualSection? Continual { get; set; }

    /// <summary>Buffered asynchronous aggregation (FedBuff) instead of synchronous rounds; null = synchronous.</summary>
    public AsyncSection? Async { get; set; }

    /// <summary>Heterogeneous agent speeds on a virtual clock; null = wall clock only.</summary>
    public SpeedsSection? Speeds { get; set; }

    /// <summary>SecAgg+ secure aggregation; null (the default) for plain aggregation.</summary>
    public SecureAggregationSection? SecureAggregation { get; set; }

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="ScenarioException">Unreadable file, unknown key, wrong type or an invalid value.</exception>
    public static Scenario Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ScenarioException($"Scenario file '{path}' does not exist.");
        }

        Scenario? scenario;
        try
        {
            scenario = JsonSerializer.Deserialize<Scenario>(File.ReadAllText(path), ReadOptions);
        }
        catch (JsonException e)
        {
            throw new ScenarioException($"Scenario '{path}': {e.Message}", e);
        }

        if (scenario is null)
        {
            throw new ScenarioException($"Scenario '{path}' is empty (null).");
        }

        scenario.Validate(path);
        return scenario;
    }

    /// <summary>The scenario as indented JSON, defaults filled in (the run folder's <c>scenario.json</c>).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, WriteOptions);

    /// <summary>Clients sampled per round, resolved.</summary>
    [JsonIgnore]
    public int ResolvedSampled => SampledPerRound == 0 ? Clients : SampledPerRound;

    /// <summary>Fewest results per round, resolved.</summary>
    [JsonIgnore]
    public int ResolvedMinResults => MinResults == 0 ? Math.Max(1, ResolvedSampled / 2) : MinResults;

    /// <summary>Throws <see cref="ScenarioException"/> naming the first invalid value.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string key, string rule, object? value)
        {
            if (!ok)
            {
                throw new ScenarioException($"Scenario '{source}': '{key}' {rule} (got {Format(value)}).");
            }
        }

        Require(Data is not null && Strategy is not null && Training is not null, "data/strategy/training", "must be objects", null);
        Require(!string.IsNullOrWhiteSpace(Name), "name", "must be non-empty", Name);
        Require(Clients is >= 1 and <= 100_000, "clients", "must be between 1 and 100000", Clients);
        Require(SampledPerRound >= 0 && SampledPerRound <= Clients, "sampledPerRound", "must be between 0 (all) and clients", SampledPerRound);
        Require(MinResults >= 0 && MinResults <= ResolvedSampled, "minResults", "must be between 0 (half) and the clients sampled per round", MinResults);
        Require(ModelFactory.Names.Contains(Model), "model", $"must be one of {string.Join(", ", ModelFactory.Names)}", Model);
        Require(Rounds is >= 1 and <= 100_000, "rounds", "must be between 1 and 100000", Rounds);
        Require(RoundDeadlineSeconds is > 0 and <= 7 * 24 * 3600, "roundDeadlineSeconds", "must be positive (at most a week)", RoundDeadlineSeconds);
        Require(Mode is "in-process" or "multi-process" or "virtual", "mode", "must be in-process, multi-process or virtual", Mode);
        Require(Virtual is not null && Virtual.PoolSize is >= 1 and <= 10_000, "virtual.poolSize", "must be between 1 and 10000", Virtual?.PoolSize);
        Require(Mode != "virtual" || FederatedEvaluationFraction == 0, "federatedEvaluationFraction", "must be 0 in virtual mode (evaluation tasks go to connected agents only)", FederatedEvaluationFraction);
        Require(AgentThreads is >= 0 and <= 1024, "agentThreads", "must be between 0 (libtorch default) and 1024", AgentThreads);
        Require(FederatedEvaluationFraction is >= 0 and <= 1, "federatedEvaluationFraction", "must be between 0 and 1", FederatedEvaluationFraction);
        Require(Dropout is >= 0 and < 1, "dropout", "must be in [0, 1)", Dropout);
        Require(Stragglers is not null && Stragglers.Fraction is >= 0 and <= 1, "stragglers.fraction", "must be between 0 and 1", Stragglers?.Fraction);
        Require(Stragglers!.Slowdown is >= 1 and <= 1000, "stragglers.slowdown", "must be between 1 and 1000", Stragglers.Slowdown);
        Require(Data!.Source is "idx" or "synthetic", "data.source", "must be idx or synthetic", Data.Source);
        Require(Data.Normalization is "fashion-mnist" or "mnist" or "none", "data.normalization", "must be fashion-mnist, mnist or none", Data.Normalization);
        Require(Data.MaxExamplesPerClient >= 0, "data.maxExamplesPerClient", "must be 0 (all) or positive", Data.MaxExamplesPerClient);
        Require(Data.LocalTestFraction is >= 0 and <= 0.9, "data.localTestFraction", "must be between 0 (no local test split) and 0.9", Data.LocalTestFraction);
        Require(Data.LocalTestFraction == 0 || (Async is null && SecureAggregation is null), "data.localTestFraction",
            "needs synchronous rounds without secure aggregation (only they record the per-agent local test accuracies)", Data.LocalTestFraction);
        Require(Data.SyntheticCount is >= 1 and <= 10_000_000, "data.syntheticCount", "must be between 1 and 10000000", Data.SyntheticCount);
        Require(Data.SyntheticClasses is >= 2 and <= 1000, "data.syntheticClasses", "must be between 2 and 1000", Data.SyntheticClasses);
        try
        {
            Partitioners.Parse(Data.Partition);
        }
        catch (ArgumentException e)
        {
            throw new ScenarioException($"Scenario '{source}': 'data.partition' is invalid: {e.Message}", e);
        }

        if (Data.Source == "idx")
        {
            var directory = Data.ResolvedDirectory;
            Require(Directory.Exists(directory), "data.directory", "must be an existing directory holding IDX files (install dataset-fashion-mnist or set FEDERATED_DATA)", directory);
        }

        Require(Training!.Epochs is >= 1 and <= 10_000, "training.epochs", "must be between 1 and 10000", Training.Epochs);
        Require(Training.BatchSize is >= 1 and <= 1_000_000, "training.batchSize", "must be positive", Training.BatchSize);
        Require(Training.Optimizer is "sgd" or "adam" or "adamw", "training.optimizer", "must be sgd, adam or adamw", Training.Optimizer);
        Require(Training.LearningRate is > 0 and < 1e6, "training.learningRate", "must be positive", Training.LearningRate);
        Require(Training.Momentum is >= 0 and < 1, "training.momentum", "must be in [0, 1)", Training.Momentum);
        Require(Training.WeightDecay is >= 0 and < 1e3, "training.weightDecay", "must be non-negative", Training.WeightDecay);
        Require(Compression is not null, "compression", "must be an object", null);
        var compression = new Coordinator.Hosting.CompressionSettings { Uplink = Compression!.Uplink, Downlink = Compression.Downlink, ErrorFeedback = Compression.ErrorFeedback };
        foreach (var error in compression.Validate(name => $"'compression.{JsonNamingPolicy.CamelCase.ConvertName(name)}'"))
        {
            throw new ScenarioException($"Scenario '{source}': {error}");
        }

        try
        {
            var strategy = StrategyFactory.Create(Strategy!.Name, Strategy.Options);
            if (Learning.Personalization.FedPer.FromConfig(strategy.ConfigureFit(1)) is { } head)
            {
                // The head must name weights of the scenario's model (and not all of them).
                var classes = Data.Source == "synthetic" ? Data.SyntheticClasses : 10;
                using var model = ModelFactory.Create(Model, new ModelShape(1, 28, 28, classes), TorchSharp.torch.CPU);
                head.Resolve(new Learning.Weights.ModelWeights(model).Layout);
            }
        }
        catch (ArgumentException e)
        {
            throw new ScenarioException($"Scenario '{source}': 'strategy' is invalid: {e.Message}", e);
        }

        Privacy?.Validate(this, source);
        Require(Attack is not null, "attack", "must be an object", null);
        Attack!.Validate(this, source);
        Continual?.Validate(this, source);
        Async?.Validate(this, source);
        Speeds?.Validate(this, source);
        SecureAggregation?.Validate(this, source);
    }

    private static string Format(object? value) => value switch
    {
        null => "nothing",
        string s => $"'{s}'",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static readonly JsonSerializerOptions ReadOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
    };
}

/// <summary>The data section of a scenario.</summary>
public sealed class DataSection
{
    /// <summary><c>idx</c> (IDX files) or <c>synthetic</c> (28×28 grey images from class prototypes).</summary>
    public string Source { get; set; } = "idx";

    /// <summary>IDX directory; null = $FEDERATED_DATA or the Debian Fashion-MNIST path.</summary>
    public string? Directory { get; set; }

    /// <summary>iid, dirichlet:A, shards:K (labels per client) or quantity:B.</summary>
    public string Partition { get; set; } = "iid";

    /// <summary>Cap each client's partition (0 = whole partition).</summary>
    public int MaxExamplesPerClient { get; set; }

    /// <summary>
    /// Fraction of each client's partition (after the cap) held out, stratified by class, as its local test split with
    /// its own label distribution (0 = none). Every result then carries the client's local test accuracy of the model
    /// it uses, and the run folder reports its spread over the clients per round (<c>local_acc_*</c>).
    /// </summary>
    public double LocalTestFraction { get; set; }

    /// <summary>fashion-mnist, mnist or none.</summary>
    public string Normalization { get; set; } = "fashion-mnist";

    /// <summary>Samples of the synthetic source (split among the clients).</summary>
    public int SyntheticCount { get; set; } = 2000;

    /// <summary>Classes of the synthetic source.</summary>
    public int SyntheticClasses { get; set; } = 10;

    /// <summary>The IDX directory to use.</summary>
    [JsonIgnore]
    public string ResolvedDirectory => Directory
        ?? Environment.GetEnvironmentVariable("FEDERATED_DATA")
        ?? Learning.Data.IdxImageSource.DebianFashionMnistDirectory;
}

/// <summary>Which agents are slow, and how slow.</summary>
public sealed class StragglerSection
{
    /// <summary>Fraction of the clients that are slow.</summary>
    public double Fraction { get; set; }

    /// <summary>How many times slower they train.</summary>
    public double Slowdown { get; set; } = 1;

    /// <summary>The slow agents' indices for <paramref name="clients"/> clients and <paramref name="seed"/>.</summary>
    public IReadOnlySet<int> Choose(int clients, long seed)
    {
        var order = Enumerable.Range(0, clients).ToArray();
        new StableRandom(unchecked((ulong)seed ^ 0x57A6_61E5UL)).Shuffle(order.AsSpan());
        return order.Take((int)Math.Round(Fraction * clients)).ToHashSet();
    }
}

/// <summary>Virtual clients: how many agents may be materialised at once.</summary>
public sealed class VirtualSection
{
    /// <summary>Agents alive at once, at most; the rest of a round's cohort waits for a slot.</summary>
    public int PoolSize { get; set; } = 10;
}

/// <summary>The compression section of a scenario: codec specs (<c>none</c>, <c>fp16</c>, <c>q8</c>, <c>topk:ratio=0.01+q8</c>, …).</summary>
public sealed class CompressionSection
{
    /// <summary>Codec of the agents' model deltas (<c>none</c> = dense float32).</summary>
    public string Uplink { get; set; } = "none";

    /// <summary>Codec of the model deltas sent to agents whose model the coordinator tracks (<c>none</c> = the full dense model).</summary>
    public string Downlink { get; set; } = "none";

    /// <summary>Agents carry what the uplink codec dropped into their next delta.</summary>
    public bool ErrorFeedback { get; set; } = true;
}

/// <summary>The strategy section of a scenario.</summary>
public sealed class StrategySection
{
    /// <summary>fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, scaffold, fednova, fedper or ditto.</summary>
    public string Name { get; set; } = "fedavg";

    /// <summary>Strategy options (e.g. <c>mu</c>, <c>server_lr</c>, <c>client_momentum</c>, fedper's <c>head</c> or <c>head_layers</c>, ditto's <c>lambda</c> and <c>personal_epochs</c>).</summary>
    public Dictionary<string, string> Options { get; set; } = [];
}

/// <summary>The local-training section of a scenario.</summary>
public sealed class TrainingSection
{
    /// <summary>Local epochs per round.</summary>
    public int Epochs { get; set; } = 1;

    /// <summary>Local batch size.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>sgd, adam or adamw.</summary>
    public string Optimizer { get; set; } = "sgd";

    /// <summary>Local learning rate.</summary>
    public double LearningRate { get; set; } = 0.01;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; set; }

    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; set; }
}

/// <summary>An invalid scenario: the message says which key and why.</summary>
public sealed class ScenarioException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ScenarioException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ScenarioException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception.</summary>
    public ScenarioException() : base("Invalid scenario.") { }
}
