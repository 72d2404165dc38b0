using System.ComponentModel.DataAnnotations;

namespace Federated.Coordinator.Hosting;

/// <summary>The coordinator's settings, bound from the <c>Coordinator</c> configuration section and validated on start.</summary>
public sealed class CoordinatorOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Coordinator";

    /// <summary>Where checkpoints (global model, round state) live.</summary>
    [Required(AllowEmptyStrings = false)]
    public string StateDirectory { get; set; } = "state/coordinator";

    /// <summary>
    /// Where state is kept: <c>sqlite</c> (the default: runs, rounds, metrics, the privacy ledger and enrolments in
    /// <see cref="DatabaseFile"/>, checkpoints as files beside it) or <c>file</c> (checkpoint files only, enrolments in
    /// <c>enrolments.json</c>).
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string Store { get; set; } = "sqlite";

    /// <summary>The SQLite database of <see cref="Store"/> <c>sqlite</c> (relative paths are under <see cref="StateDirectory"/>).</summary>
    [Required(AllowEmptyStrings = false)]
    public string DatabaseFile { get; set; } = "coordinator.db";

    /// <summary><see cref="DatabaseFile"/> resolved against <see cref="StateDirectory"/>.</summary>
    public string ResolvedDatabaseFile => Path.IsPathRooted(DatabaseFile) ? DatabaseFile : Path.Combine(StateDirectory, DatabaseFile);

    /// <summary>Resume from the last checkpoint in <see cref="StateDirectory"/> when there is one.</summary>
    public bool Resume { get; set; } = true;

    /// <summary>Model architecture (mlp, cnn, simple-cnn, resnet8).</summary>
    [Required(AllowEmptyStrings = false)]
    public string Model { get; set; } = "cnn";

    /// <summary>Input shape the model is built for: channels, height, width (empty: 1×28×28).</summary>
    /// <remarks>Empty by default because the configuration binder appends to, rather than replaces, a default array.</remarks>
    public int[] InputShape { get; set; } = [];

    /// <summary><see cref="InputShape"/>, or 1×28×28 when none is configured.</summary>
    public int[] ResolvedInputShape => InputShape.Length == 0 ? [1, 28, 28] : InputShape;

    /// <summary>Number of classes.</summary>
    [Range(2, 100_000)]
    public int NumClasses { get; set; } = 10;

    /// <summary>Seed for the initial model, client sampling and the clients' training.</summary>
    public long Seed { get; set; } = 1;

    /// <summary>Rounds to run.</summary>
    [Range(1, 1_000_000)]
    public int Rounds { get; set; } = 3;

    /// <summary>Strategy name (fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, scaffold, fednova, fedper, ditto).</summary>
    [Required(AllowEmptyStrings = false)]
    public string Strategy { get; set; } = "fedavg";

    /// <summary>Strategy options (e.g. <c>mu</c>, <c>server_lr</c>).</summary>
    public Dictionary<string, string> StrategyOptions { get; set; } = [];

    /// <summary>Sum results in a fixed order (by agent id), so a seed gives the same model whatever the arrival order.</summary>
    public bool Deterministic { get; set; }

    /// <summary>Fraction of available agents asked to train each round.</summary>
    [Range(0.0, 1.0)]
    public double FractionFit { get; set; } = 1.0;

    /// <summary>
    /// Who a round samples from: <c>connected</c> (agents with an open session; the default) or <c>enrolled</c> (every
    /// agent the coordinator knows, from <see cref="RosterFile"/> or a past enrolment, connected or not). With
    /// <c>enrolled</c>, a task for an offline agent waits until the agent connects (a device checking in) or the
    /// round closes, and the <see cref="Agents.IAgentActivator"/> is asked to bring it online.
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string Population { get; set; } = "connected";

    /// <summary>A text file of pre-registered agent ids, one per line (<c>#</c> starts a comment); empty = none.</summary>
    public string RosterFile { get; set; } = "";

    /// <summary>Agents that must be available (connected, or known with <see cref="Population"/> <c>enrolled</c>) before a round starts.</summary>
    [Range(1, 1_000_000)]
    public int MinAvailable { get; set; } = 2;

    /// <summary>Fewest results a round may aggregate; fewer and the round fails (the global model stays).</summary>
    [Range(1, 1_000_000)]
    public int MinFit { get; set; } = 2;

    /// <summary>Extra agents asked beyond the target, to absorb stragglers; the round closes at the target.</summary>
    [Range(0, 1_000_000)]
    public int OverSelect { get; set; }

    /// <summary>Seconds a round waits for results before proceeding with what arrived.</summary>
    [Range(0.1, 7 * 24 * 3600.0)]
    public double RoundDeadlineSeconds { get; set; } = 600;

    /// <summary>Seconds to wait for <see cref="MinAvailable"/> agents before giving up on the run (0 = forever).</summary>
    [Range(0, 365 * 24 * 3600.0)]
    public double WaitForAgentsSeconds { get; set; }

    /// <summary>Local training the coordinator asks of agents.</summary>
    public TrainingSettings Training { get; set; } = new();

    /// <summary>Server-side evaluation data; none when <see cref="EvaluationSettings.Source"/> is <c>none</c>.</summary>
    public EvaluationSettings Evaluation { get; set; } = new();

    /// <summary>Optional federated evaluation: agents evaluate the new global model on their own data.</summary>
    public FederatedEvaluationSettings FederatedEvaluation { get; set; } = new();

    /// <summary>Bytes per transfer chunk (models and updates move in chunks of this size).</summary>
    [Range(16 * 1024, 64 * 1024 * 1024)]
    public int ChunkBytes { get; set; } = 1024 * 1024;

    /// <summary>Largest payload (model or update) the coordinator accepts.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxPayloadBytes { get; set; } = 1L << 30;

    /// <summary>Largest gRPC message the coordinator accepts (a chunk plus framing must fit).</summary>
    [Range(64 * 1024, 512 * 1024 * 1024)]
    public int MaxReceiveMessageBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// HTTP/2 connection flow-control window. Kestrel's default (128 KB) held 1 MiB-chunk streaming on loopback to
    /// ~130 MB/s here; 16 MiB windows gave ~200–250 MB/s, so a whole chunk (and several in flight) fit the window.
    /// </summary>
    [Range(65_535, int.MaxValue)]
    public int Http2ConnectionWindowBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>HTTP/2 per-stream flow-control window (Kestrel's default is 96 KB); see <see cref="Http2ConnectionWindowBytes"/>.</summary>
    [Range(65_535, int.MaxValue)]
    public int Http2StreamWindowBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>The secret agents must present to enrol; empty = open enrolment.</summary>
    public string EnrollmentKey { get; set; } = "";

    /// <summary>How often agents send heartbeats.</summary>
    [Range(0.05, 3600.0)]
    public double HeartbeatSeconds { get; set; } = 5;

    /// <summary>An agent silent this long is considered gone and its stream closed.</summary>
    [Range(0.1, 24 * 3600.0)]
    public double AgentTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// How long a round waits for an agent whose session dropped while it held a task to come back (a network blip)
    /// before it counts the agent as failed; a result that arrives on the new session within that time counts. 0 fails
    /// the agent at once (default 5 s).
    /// </summary>
    [Range(0.0, 24 * 3600.0)]
    public double ReconnectGraceSeconds { get; set; } = 5;

    /// <summary>After the last round: tell agents to shut down and stop the coordinator.</summary>
    public bool ExitWhenDone { get; set; }

    /// <summary>Per-round metrics are appended here as CSV (relative paths are under <see cref="StateDirectory"/>).</summary>
    public string MetricsFile { get; set; } = "rounds.csv";

    /// <summary>Compressed uploads and downloads (codecs and error feedback); off by default.</summary>
    public CompressionSettings Compression { get; set; } = new();
    /// <summary>OpenTelemetry metrics and their Prometheus endpoint; on by default.</summary>
    public PrometheusSettings Prometheus { get; set; } = new();

    /// <summary>The read-only web dashboard; off by default.</summary>
    public DashboardSettings Dashboard { get; set; } = new();

    /// <summary>Client-level differential privacy (DP-FedAvg with Poisson sampling and an RDP accountant); off by default.</summary>
    public PrivacySettings Privacy { get; set; } = new();

    /// <summary>Agent identity (keys, tokens, revocation), TLS, health and reflection, and the service's limits.</summary>
    public SecuritySettings Security { get; set; } = new();

    /// <summary>
    /// The training loop: <c>sync</c> (rounds, the default) or <c>fedbuff</c> (buffered asynchronous aggregation, see
    /// <see cref="Async"/>; <see cref="Rounds"/> then counts buffer flushes).
    /// </summary>
    public string Mode { get; set; } = "sync";

    /// <summary>Buffered asynchronous aggregation (<see cref="Mode"/> <c>fedbuff</c>).</summary>
    public AsyncSettings Async { get; set; } = new();

    /// <summary>A virtual clock for simulations (agents' compute times drawn from a distribution); off by default.</summary>
    public VirtualClockSettings VirtualClock { get; set; } = new();

    /// <summary>Federated continual learning on the coordinator's side (Fisher consolidation); off by default.</summary>
    public ContinualSettings Continual { get; set; } = new();

    /// <summary>SecAgg+ secure aggregation: the coordinator sees only the sum of the updates; off by default.</summary>
    public SecureAggregationSettings SecureAggregation { get; set; } = new();

    /// <summary>Runs (jobs) besides the configured one: submitted, paused, resumed and aborted through the admin API.</summary>
    public RunsSettings Runs { get; set; } = new();

    /// <summary>The admin gRPC service (<c>federated.v1.Admin</c>: runs) and who may call it.</summary>
    public AdminSettings Admin { get; set; } = new();
}

/// <summary>
/// Run management (the <c>Coordinator:Runs</c> section). The coordinator runs the run its settings describe (the
/// configured run) and any number of runs submitted through the admin API, each with its own model, strategy, settings
/// and agents (by id or label), its checkpoints and <c>rounds.csv</c> under <c>&lt;StateDirectory&gt;/runs/&lt;run id&gt;</c>.
/// </summary>
public sealed class RunsSettings
{
    /// <summary>
    /// Start the configured run when the coordinator starts (default true). False: the coordinator only serves submitted
    /// runs, and its own settings are their defaults.
    /// </summary>
    public bool RunOnStart { get; set; } = true;

    /// <summary>Most runs active at once, the configured one not counted (1–64, default 8).</summary>
    [Range(1, 64)]
    public int MaxActive { get; set; } = 8;
}

/// <summary>The admin gRPC service (the <c>Coordinator:Admin</c> section).</summary>
public sealed class AdminSettings
{
    /// <summary>Serve <c>federated.v1.Admin</c> (default true).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The bearer token admin calls must carry (<c>authorization: Bearer &lt;token&gt;</c>), at least 16 characters; empty
    /// (the default): only callers on the loopback interface are served.
    /// </summary>
    public string Token { get; set; } = "";
}

/// <summary>
/// Federated continual learning (the <c>Coordinator:Continual</c> section). With <see cref="ConsolidateFisher"/> the
/// strategy is wrapped in a <see cref="Learning.Continual.FisherConsolidationStrategy"/>: agents upload the Fisher
/// diagonal of every experience boundary they cross, the coordinator averages them weighted by examples and sends the
/// consolidated diagonal and its anchor with the global model, and the agents' EWC uses them.
/// </summary>
public sealed class ContinualSettings
{
    /// <summary>Aggregate the agents' Fisher diagonals and send the consolidated importance and anchor (default false).</summary>
    public bool ConsolidateFisher { get; set; }

    /// <summary>
    /// The agents' stream (<c>none</c>, <c>split-task</c>, <c>split-domain</c>, <c>split-class</c>, <c>permuted</c>,
    /// <c>drift</c>): when set, every round also evaluates the global model on each experience's test split (cut from
    /// the evaluation data as the agents cut theirs) and records <c>accuracy_exp0</c> … in the round's metrics.
    /// </summary>
    public string Stream { get; set; } = "none";

    /// <summary>Experiences of a permuted stream, steps of a drift stream (as <c>Client:Continual:Experiences</c>).</summary>
    public int Experiences { get; set; } = 10;

    /// <summary>The stream's seed (as <c>Client:Continual:Seed</c>: the permutations depend on it).</summary>
    public int Seed { get; set; }
}

/// <summary>
/// The Prometheus endpoint of the coordinator's OpenTelemetry metrics (meter <c>Federated.Coordinator</c>: rounds,
/// participants, bytes, rejected updates, aggregation time, ε).
/// </summary>
public sealed class PrometheusSettings
{
    /// <summary>Collect the metrics and serve them (default true).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The scraping path (default <c>/metrics</c>).</summary>
    public string Path { get; set; } = "/metrics";

    /// <summary>
    /// An extra listen address for scrapers, e.g. <c>http://0.0.0.0:9464</c>: it speaks HTTP/1.1 (as Prometheus does) and
    /// serves only <see cref="Path"/>. Empty (the default): the path is served on the gRPC addresses, which speak HTTP/2
    /// only in cleartext (<c>curl --http2-prior-knowledge</c>).
    /// </summary>
    public string Url { get; set; } = "";
}

/// <summary>
/// Client-level differential privacy (the <c>Coordinator:Privacy</c> section). When enabled, the strategy is wrapped
/// in a <see cref="Learning.Privacy.DifferentialPrivacyStrategy"/>, every round samples each agent of the population
/// independently with probability <see cref="SampleRate"/> (Poisson sampling, replacing <see cref="CoordinatorOptions.FractionFit"/>),
/// the privacy ledger is saved with every checkpoint and ε is reported after every round.
/// </summary>
public sealed class PrivacySettings
{
    /// <summary>Turns differential privacy on.</summary>
    public bool Enabled { get; set; }

    /// <summary>z, the total noise multiplier per round; 0 = calibrate it from <see cref="TargetEpsilon"/>. Set exactly one of the two.</summary>
    public double NoiseMultiplier { get; set; }

    /// <summary>
    /// ε to reach after <see cref="CoordinatorOptions.Rounds"/> rounds at <see cref="Delta"/>; the smallest z that meets it is
    /// found with the accountant; 0 = use <see cref="NoiseMultiplier"/>.
    /// </summary>
    public double TargetEpsilon { get; set; }

    /// <summary>δ at which ε is reported, calibrated and checked against the budget.</summary>
    public double Delta { get; set; } = 1e-5;

    /// <summary>C, the L2 bound every update is clipped to (the initial bound with adaptive clipping).</summary>
    public double ClipBound { get; set; } = 1.0;

    /// <summary>Agents clip their own updates (the task configuration carries the bound); the coordinator checks and rescales.</summary>
    public bool ClipOnAgents { get; set; }

    /// <summary>q ∈ (0, 1], the Poisson sampling rate: each agent of the population joins a round with this probability.</summary>
    public double SampleRate { get; set; }

    /// <summary>ε_max at <see cref="Delta"/>: the run stops before a round that would exceed it; 0 = no budget.</summary>
    public double EpsilonBudget { get; set; }

    /// <summary>
    /// Key of the noise and of the Poisson sample; empty = the operating system's entropy (production). A seed makes
    /// runs reproducible and the noise known to anyone who knows it: for simulations only.
    /// </summary>
    public string Seed { get; set; } = "";

    /// <summary>Adaptive clipping (Andrew et al. 2021); off by default.</summary>
    public AdaptiveClippingSettings Adaptive { get; set; } = new();
}

/// <summary>Adaptive clipping: the bound follows a quantile of the update norms, starting at <see cref="PrivacySettings.ClipBound"/>.</summary>
public sealed class AdaptiveClippingSettings
{
    /// <summary>Turns adaptive clipping on.</summary>
    public bool Enabled { get; set; }

    /// <summary>γ ∈ (0, 1), the target fraction of unclipped updates.</summary>
    public double TargetQuantile { get; set; } = 0.5;

    /// <summary>η_C &gt; 0, the bound's geometric learning rate.</summary>
    public double LearningRate { get; set; } = 0.2;

    /// <summary>σ_b &gt; 0, the noise on the unclipped count (the paper suggests expected participants / 20); must exceed z / 2.</summary>
    public double CountNoiseStddev { get; set; }
}

/// <summary>Local training agents run each round.</summary>
public sealed class TrainingSettings
{
    /// <summary>Local epochs per round.</summary>
    [Range(1, 10_000)]
    public int Epochs { get; set; } = 1;

    /// <summary>Local mini-batch size.</summary>
    [Range(1, 1_000_000)]
    public int BatchSize { get; set; } = 64;

    /// <summary>sgd, adam or adamw.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Optimizer { get; set; } = "adam";

    /// <summary>Local learning rate.</summary>
    [Range(1e-12, 1e6)]
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>SGD momentum.</summary>
    [Range(0.0, 0.9999)]
    public double Momentum { get; set; }

    /// <summary>Weight decay.</summary>
    [Range(0.0, 1e3)]
    public double WeightDecay { get; set; }

    /// <summary>Gradient-norm clip, 0 = off.</summary>
    [Range(0.0, 1e9)]
    public double GradientClipNorm { get; set; }
}

/// <summary>Where the coordinator's held-out evaluation data comes from.</summary>
public sealed class EvaluationSettings
{
    /// <summary><c>idx</c>, <c>synthetic</c> or <c>none</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Source { get; set; } = "idx";

    /// <summary>IDX directory (test split is read); default $FEDERATED_DATA or the Debian Fashion-MNIST path.</summary>
    public string Directory { get; set; } = Environment.GetEnvironmentVariable("FEDERATED_DATA") ?? Learning.Data.IdxImageSource.DebianFashionMnistDirectory;

    /// <summary>Split to evaluate on.</summary>
    public string Split { get; set; } = "test";

    /// <summary><c>fashion-mnist</c>, <c>mnist</c> or <c>none</c>: must match the agents'.</summary>
    public string Normalization { get; set; } = "fashion-mnist";

    /// <summary>Samples of the synthetic source.</summary>
    [Range(1, 10_000_000)]
    public int SyntheticCount { get; set; } = 512;

    /// <summary>Evaluation batch size.</summary>
    [Range(1, 100_000)]
    public int BatchSize { get; set; } = 256;

    /// <summary>libtorch threads for evaluation; 0 = libtorch default.</summary>
    [Range(0, 1024)]
    public int Threads { get; set; }
}

/// <summary>Federated evaluation on agents after aggregation (Flower's <c>configure_evaluate</c>).</summary>
public sealed class FederatedEvaluationSettings
{
    /// <summary>Fraction of connected agents asked to evaluate; 0 turns federated evaluation off.</summary>
    [Range(0.0, 1.0)]
    public double Fraction { get; set; }

    /// <summary>Fewest agents asked (when the fraction is positive).</summary>
    [Range(1, 1_000_000)]
    public int MinAgents { get; set; } = 1;

    /// <summary>Evaluate every this many rounds.</summary>
    [Range(1, 1_000_000)]
    public int EveryRounds { get; set; } = 1;

    /// <summary>Seconds to wait for evaluation results.</summary>
    [Range(0.1, 24 * 3600.0)]
    public double DeadlineSeconds { get; set; } = 120;
}
