using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Federated.Learning.Data;
using Federated.Learning.Data.Partitioning;
using Federated.Learning.Runtime;

namespace Federated.Client.Hosting;

/// <summary>The agent's settings, bound from the <c>Client</c> configuration section and validated on start.</summary>
public sealed class ClientOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Client";

    /// <summary>The coordinator's address, e.g. <c>http://localhost:5000</c>.</summary>
    public Uri? CoordinatorAddress { get; set; } = new("http://localhost:5000");

    /// <summary>This agent's id; when empty, one is generated once and kept in <see cref="StateDirectory"/>.</summary>
    public string? AgentId { get; set; }

    /// <summary>
    /// Labels the agent reports to the coordinator with its capabilities (e.g. <c>site=lab-2</c>), besides the ones it
    /// sets itself (data, partition, device, ...; a label here replaces one of those). Runs select agents by them
    /// (<c>federated-coordinator runs submit --label site=lab-2</c>). At most 32, keys of 1–64 characters, values of at most 256.
    /// </summary>
    public Dictionary<string, string> Labels { get; set; } = [];

    /// <summary>The coordinator's enrolment secret (empty when enrolment is open).</summary>
    public string? EnrollmentKey { get; set; }

    /// <summary>
    /// A one-time enrolment token an administrator issued (<c>federated-coordinator agents token</c>): the first
    /// enrolment registers this agent's key; later ones need only the key. Empty when the key is pre-registered.
    /// </summary>
    public string? EnrolmentToken { get; set; }

    /// <summary>The agent's Ed25519 private key file, relative to <see cref="StateDirectory"/>; created on the first start (mode 0600 on Unix).</summary>
    public string IdentityKeyFile { get; set; } = "identity.key";

    /// <summary>TLS to the coordinator (an https address): the CA to trust and this agent's certificate for mutual TLS.</summary>
    public ClientTlsOptions Tls { get; set; } = new();

    /// <summary><c>auto</c>, <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>libtorch intra-op threads; 0 keeps libtorch's default (one per core). Agents sharing a machine should use 1.</summary>
    public int Threads { get; set; }

    /// <summary>Where the agent keeps its id, its local model and its strategy state between rounds and restarts.</summary>
    public string StateDirectory { get; set; } = "state/client";

    /// <summary>The local data set and this agent's share of it.</summary>
    public ClientDataOptions Data { get; set; } = new();

    /// <summary>First reconnect delay ceiling, in seconds (doubles per failed attempt, full jitter).</summary>
    public double ReconnectMinSeconds { get; set; } = 0.5;

    /// <summary>Largest reconnect delay, in seconds.</summary>
    public double ReconnectMaxSeconds { get; set; } = 30;

    /// <summary>How often a broken download or upload is resumed before the task fails.</summary>
    public int MaxTransferRetries { get; set; } = 5;

    /// <summary>How the agent computes: the training precision (fp32, bf16 or fp16).</summary>
    public ClientTrainingOptions Training { get; set; } = new();

    /// <summary>Limits on what the agent may take from its device: threads aside, memory, time and pauses.</summary>
    public ClientResourceOptions Resources { get; set; } = new();

    /// <summary>Fault injection for simulations (dropouts, stragglers); off unless set.</summary>
    public ClientSimulationOptions Simulation { get; set; } = new();

    /// <summary>A Byzantine agent for robustness experiments (off unless set).</summary>
    public ClientAttackOptions Attack { get; set; } = new();

    /// <summary>Federated continual learning: the agent's stream of experiences and plug-ins (off unless set).</summary>
    public ClientContinualOptions Continual { get; set; } = new();

    /// <summary>The device kind (valid after validation).</summary>
    public DeviceKind DeviceKind => TorchRuntime.ParseDevice(Device);

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) =>
        GetErrors().Select(e => new ValidationResult(e));

    /// <summary>Every rule the settings break, one clear sentence each (empty when valid).</summary>
    public IReadOnlyList<string> GetErrors()
    {
        var errors = new List<string>();
        if (Labels is null || Labels.Count > 32 || Labels.Any(kv => kv.Key.Length is 0 or > 64 || kv.Value is null || kv.Value.Length > 256))
        {
            errors.Add("Client:Labels holds at most 32 labels, each a key of 1–64 characters with a value of at most 256.");
        }

        if (Simulation is null || !(Simulation.DropoutProbability is >= 0 and <= 1))
        {
            errors.Add("Client:Simulation:DropoutProbability must be between 0 and 1.");
        }

        if (Simulation is not null && (Simulation.SecAggFault is not ("none" or "keys" or "shares" or "input" or "unmask" or "bad-signature") || Simulation.SecAggFaultRound < 0))
        {
            errors.Add($"Client:Simulation:SecAggFault must be none, keys, shares, input, unmask or bad-signature (not '{Simulation.SecAggFault}'), and Client:Simulation:SecAggFaultRound 0 (every round) or a round number.");
        }

        if (Simulation is not null && !(Simulation.Slowdown is >= 1 and <= 1000))
        {
            errors.Add("Client:Simulation:Slowdown must be between 1 (normal speed) and 1000.");
        }

        if (CoordinatorAddress is null)
        {
            errors.Add("Client:CoordinatorAddress is required (e.g. http://localhost:5000).");
        }
        else if (!CoordinatorAddress.IsAbsoluteUri || CoordinatorAddress.Scheme is not ("http" or "https") || string.IsNullOrEmpty(CoordinatorAddress.Host))
        {
            errors.Add($"Client:CoordinatorAddress must be an absolute http or https URL such as http://localhost:5000, not '{CoordinatorAddress.OriginalString}'.");
        }

        if (!TryParseDevice(Device))
        {
            errors.Add($"Client:Device must be auto, cpu or cuda, not '{Device}'.");
        }

        if (Threads < 0 || Threads > 1024)
        {
            errors.Add($"Client:Threads must be 0 (libtorch default) or a positive number of threads up to 1024, not {Threads}.");
        }

        if (string.IsNullOrWhiteSpace(StateDirectory))
        {
            errors.Add("Client:StateDirectory must name a directory.");
        }

        if (AgentId is { Length: > 0 } id && (id.Length > 128 || id.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))))
        {
            errors.Add("Client:AgentId must be at most 128 characters without spaces or control characters.");
        }

        if (!(ReconnectMinSeconds > 0) || !double.IsFinite(ReconnectMinSeconds))
        {
            errors.Add($"Client:ReconnectMinSeconds must be a positive number of seconds, not {ReconnectMinSeconds}.");
        }
        else if (!(ReconnectMaxSeconds >= ReconnectMinSeconds) || !double.IsFinite(ReconnectMaxSeconds))
        {
            errors.Add($"Client:ReconnectMaxSeconds ({ReconnectMaxSeconds}) must be at least Client:ReconnectMinSeconds ({ReconnectMinSeconds}).");
        }

        if (string.IsNullOrWhiteSpace(IdentityKeyFile))
        {
            errors.Add("Client:IdentityKeyFile must name a file (default identity.key in the state directory).");
        }

        if (Tls is null)
        {
            errors.Add("Client:Tls must be a section.");
        }
        else
        {
            foreach (var (key, path) in new[] { ("CaCertificatePath", Tls.CaCertificatePath), ("CertificatePath", Tls.CertificatePath), ("KeyPath", Tls.KeyPath) })
            {
                if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path))
                {
                    errors.Add($"Client:Tls:{key} '{path}' does not exist.");
                }
            }

            if (!string.IsNullOrWhiteSpace(Tls.KeyPath) && string.IsNullOrWhiteSpace(Tls.CertificatePath))
            {
                errors.Add("Client:Tls:KeyPath needs Client:Tls:CertificatePath.");
            }

            if ((!string.IsNullOrWhiteSpace(Tls.CaCertificatePath) || !string.IsNullOrWhiteSpace(Tls.CertificatePath)) && CoordinatorAddress is { Scheme: "http" })
            {
                errors.Add("Client:Tls needs an https Client:CoordinatorAddress.");
            }
        }

        if (MaxTransferRetries is < 0 or > 1000)
        {
            errors.Add($"Client:MaxTransferRetries must be between 0 and 1000, not {MaxTransferRetries}.");
        }

        if (Attack is null)
        {
            errors.Add("Client:Attack must be a section.");
        }
        else
        {
            Attack.AddErrors(errors);
        }

        if (Continual is null)
        {
            errors.Add("Client:Continual must be a section.");
        }
        else
        {
            Continual.AddErrors(errors);
        }

        if (Training is null)
        {
            errors.Add("Client:Training must be a section.");
        }
        else
        {
            Training.AddErrors(errors);
        }

        if (Resources is null)
        {
            errors.Add("Client:Resources must be a section.");
        }
        else
        {
            Resources.AddErrors(errors);
        }

        if (Data is null)
        {
            errors.Add("Client:Data is required.");
        }
        else
        {
            Data.AddErrors(errors);
        }

        return errors;
    }

    private static bool TryParseDevice(string? value)
    {
        if (value is null)
        {
            return false;
        }

        try
        {
            TorchRuntime.ParseDevice(value);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

/// <summary>TLS to the coordinator (the <c>Client:Tls</c> section).</summary>
public sealed class ClientTlsOptions
{
    /// <summary>A PEM file of CA certificates to trust for the coordinator's certificate (instead of the system's); empty = the system's.</summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>Mutual TLS: this agent's certificate (PEM, with <see cref="KeyPath"/> or the key inside; or .pfx).</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }
}

/// <summary>The <c>Client:Data</c> section: which data the agent trains on and which share of it is its own.</summary>
public sealed class ClientDataOptions
{
    /// <summary>The source kinds <see cref="Source"/> accepts.</summary>
    public static IReadOnlyList<string> Sources { get; } = ["idx", "synthetic", "csv", "images", CustomSource];

    /// <summary>
    /// The source kind of an application's own data source (<see cref="Training.IDataSourceProvider"/>), which
    /// <see cref="ClientServiceCollectionExtensions.AddFederatedDataSource"/> registers.
    /// </summary>
    public const string CustomSource = "custom";

    /// <summary>
    /// <c>idx</c> (IDX image files, e.g. Fashion-MNIST), <c>synthetic</c> (28×28×1 learnable images), <c>csv</c>
    /// (a tabular file with a header, see <see cref="Path"/>, <see cref="LabelColumn"/>) or <c>images</c> (one
    /// sub-folder of <see cref="Directory"/> per class), or <c>custom</c> (an application's own
    /// <see cref="Training.IDataSourceProvider"/>).
    /// </summary>
    public string Source { get; set; } = "idx";

    /// <summary>The CSV file (<c>csv</c> source).</summary>
    public string? Path { get; set; }

    /// <summary>The CSV label column's header name.</summary>
    public string LabelColumn { get; set; } = "label";

    /// <summary>The CSV feature columns, comma-separated; empty: every column but the label.</summary>
    public string? FeatureColumns { get; set; }

    /// <summary>The class names in class order, comma-separated (CSV labels); empty: numeric labels or sorted names.</summary>
    public string? Classes { get; set; }

    /// <summary>Width images are resized to (<c>images</c> source).</summary>
    public int ImageWidth { get; set; } = 28;

    /// <summary>Height images are resized to.</summary>
    public int ImageHeight { get; set; } = 28;

    /// <summary>1 (grey) or 3 (RGB).</summary>
    public int ImageChannels { get; set; } = 1;

    /// <summary>The IDX directory or the image folder's root; default <c>$FEDERATED_DATA</c> or <c>/usr/share/datasets/fashion-mnist</c>.</summary>
    public string Directory { get; set; } = Environment.GetEnvironmentVariable("FEDERATED_DATA") is { Length: > 0 } dir ? dir : IdxImageSource.DebianFashionMnistDirectory;

    /// <summary>The IDX split (<c>train</c> or <c>test</c>).</summary>
    public string Split { get; set; } = "train";

    /// <summary>How the data set is split across agents (<see cref="Partitioners.Syntax"/>).</summary>
    public string Partition { get; set; } = "iid";

    /// <summary>The number of partitions (agents sharing the data set).</summary>
    public int Clients { get; set; } = 1;

    /// <summary>This agent's partition, 0-based, below <see cref="Clients"/>.</summary>
    public int Index { get; set; }

    /// <summary>Seed of the partition (and of the synthetic data); every agent of a run must use the same.</summary>
    public long Seed { get; set; } = 42;

    /// <summary>Keep only the first N examples of the partition; 0 keeps all.</summary>
    public int MaxExamples { get; set; }

    /// <summary>
    /// Fraction of the partition (after <see cref="MaxExamples"/>) held out as the agent's local test split, stratified
    /// by class so that it has the partition's own label distribution; 0 (the default) holds out nothing. Every training
    /// run evaluates the model the agent uses on it and reports <c>local_test_accuracy</c>.
    /// </summary>
    public double LocalTestFraction { get; set; }

    /// <summary><c>fashion-mnist</c>, <c>mnist</c> or <c>none</c>.</summary>
    public string Normalization { get; set; } = "fashion-mnist";

    /// <summary>Samples the synthetic source generates (before partitioning).</summary>
    public int SyntheticCount { get; set; } = 6000;

    /// <summary>Classes of the synthetic source.</summary>
    public int SyntheticClasses { get; set; } = 10;

    /// <summary>The normalisation object named by <see cref="Normalization"/>.</summary>
    public Normalization GetNormalization() => Normalization.Trim().ToUpperInvariant() switch
    {
        "FASHION-MNIST" or "FASHIONMNIST" => Learning.Data.Normalization.FashionMnist,
        "MNIST" => Learning.Data.Normalization.Mnist,
        "NONE" => Learning.Data.Normalization.None,
        _ => throw new ArgumentException($"Client:Data:Normalization must be fashion-mnist, mnist or none, not '{Normalization}'."),
    };

    /// <summary>True for the synthetic source.</summary>
    public bool IsSynthetic => string.Equals(Source?.Trim(), "synthetic", StringComparison.OrdinalIgnoreCase);

    /// <summary>The normalised source kind (one of <see cref="Sources"/>), or null when unknown.</summary>
    public string? SourceKind => Sources.FirstOrDefault(k => string.Equals(k, Source?.Trim(), StringComparison.OrdinalIgnoreCase));

    /// <summary>The CSV schema these options describe.</summary>
    public CsvSchema GetCsvSchema() => new()
    {
        Label = LabelColumn.Trim(),
        Features = SplitList(FeatureColumns),
        Classes = SplitList(Classes),
    };

    private static List<string> SplitList(string? text) =>
        string.IsNullOrWhiteSpace(text) ? [] : text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    internal void AddErrors(List<string> errors)
    {
        var kind = SourceKind;
        if (kind is null)
        {
            errors.Add($"Client:Data:Source must be one of {string.Join(", ", Sources)}, not '{Source}'.");
        }

        if (kind is "idx" && string.IsNullOrWhiteSpace(Directory))
        {
            errors.Add("Client:Data:Directory must name the directory holding the IDX files.");
        }

        if (kind is "idx" && string.IsNullOrWhiteSpace(Split))
        {
            errors.Add("Client:Data:Split must name an IDX split such as train.");
        }

        if (kind is "images" && string.IsNullOrWhiteSpace(Directory))
        {
            errors.Add("Client:Data:Directory must name the image folder (one sub-folder per class).");
        }

        if (kind is "images" && (ImageWidth is < 1 or > 4096 || ImageHeight is < 1 or > 4096))
        {
            errors.Add($"Client:Data:ImageWidth and Client:Data:ImageHeight must be between 1 and 4096, not {ImageWidth}×{ImageHeight}.");
        }

        if (kind is "images" && ImageChannels is not (1 or 3))
        {
            errors.Add($"Client:Data:ImageChannels must be 1 (grey) or 3 (RGB), not {ImageChannels}.");
        }

        if (kind is "csv" && string.IsNullOrWhiteSpace(Path))
        {
            errors.Add("Client:Data:Path must name the CSV file of the csv source.");
        }

        if (kind is "csv" && string.IsNullOrWhiteSpace(LabelColumn))
        {
            errors.Add("Client:Data:LabelColumn must name the CSV file's label column.");
        }

        if (kind is "csv" && SplitList(FeatureColumns).Contains(LabelColumn?.Trim() ?? ""))
        {
            errors.Add($"Client:Data:FeatureColumns must not include the label column '{LabelColumn}'.");
        }

        if (Clients < 1)
        {
            errors.Add($"Client:Data:Clients must be at least 1, not {Clients}.");
        }
        else if (Index < 0 || Index >= Clients)
        {
            errors.Add($"Client:Data:Index must be between 0 and Client:Data:Clients - 1 ({Clients - 1}), not {Index}.");
        }

        if (Seed < 0)
        {
            errors.Add($"Client:Data:Seed must not be negative, not {Seed}.");
        }

        if (MaxExamples < 0)
        {
            errors.Add($"Client:Data:MaxExamples must be 0 (all) or positive, not {MaxExamples}.");
        }

        if (LocalTestFraction is not (>= 0 and <= 0.9))
        {
            errors.Add($"Client:Data:LocalTestFraction must be between 0 (no local test split) and 0.9, not {LocalTestFraction.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        }

        try
        {
            Partitioners.Parse(Partition ?? string.Empty);
        }
        catch (ArgumentException e)
        {
            errors.Add($"Client:Data:Partition: {(e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal))}");
        }

        if (Normalization is null || Normalization.Trim().ToUpperInvariant() is not ("FASHION-MNIST" or "FASHIONMNIST" or "MNIST" or "NONE"))
        {
            errors.Add($"Client:Data:Normalization must be fashion-mnist, mnist or none, not '{Normalization}'.");
        }

        if (kind is "synthetic" && SyntheticCount < 1)
        {
            errors.Add($"Client:Data:SyntheticCount must be positive, not {SyntheticCount}.");
        }

        if (kind is "synthetic" && SyntheticClasses < 2)
        {
            errors.Add($"Client:Data:SyntheticClasses must be at least 2, not {SyntheticClasses}.");
        }

        if (kind is "synthetic" && Clients >= 1 && SyntheticCount >= 1 && SyntheticCount < Clients)
        {
            errors.Add($"Client:Data:SyntheticCount ({SyntheticCount}) must be at least Client:Data:Clients ({Clients}).");
        }
    }
}

/// <summary>
/// Behaviour a simulation injects into an agent: a dropout probability per training task (the agent takes the task
/// and never answers, as a device that lost power would) and a slow-down factor (the agent takes this many times its
/// real training time before it uploads, as a slower device would). Draws are seeded, so a scenario repeats.
/// </summary>
public sealed class ClientSimulationOptions
{
    /// <summary>Probability that the agent silently drops a training task.</summary>
    public double DropoutProbability { get; set; }

    /// <summary>Training takes this many times longer (1 = normal).</summary>
    public double Slowdown { get; set; } = 1;

    /// <summary>Seed of the dropout draws.</summary>
    public long Seed { get; set; }

    /// <summary>
    /// A secure-aggregation fault to simulate: <c>none</c>; <c>keys</c>, <c>shares</c>, <c>input</c> or <c>unmask</c>
    /// (the agent goes silent from that stage on for the rest of the round, e.g. <c>input</c> = a dropout after sharing
    /// keys); <c>bad-signature</c> (its key advertisement carries a corrupt signature).
    /// </summary>
    public string SecAggFault { get; set; } = "none";

    /// <summary>The round <see cref="SecAggFault"/> applies to (0: every round).</summary>
    public int SecAggFaultRound { get; set; }
}

/// <summary>
/// The <c>Client:Resources</c> section: what the agent may take from the device it shares with its owner. Threads are
/// <see cref="ClientOptions.Threads"/>; this adds a memory budget, a daily training window, a duty cycle and a pause file.
/// </summary>
public sealed class ClientResourceOptions
{
    /// <summary>
    /// Memory the agent may use for replay buffers and caches (pending uploads, continual-learning state, error-feedback
    /// residual, reconstructed downlink model), in MiB; 0: no budget. The replay buffer may take at most
    /// <see cref="Training.MemoryBudget.ReplayShare"/> of it (its example budget is clamped at start-up); pending uploads
    /// are dropped oldest first when they and the other caches would exceed it. The local data set and the model are not
    /// counted.
    /// </summary>
    public int MemoryBudgetMB { get; set; }

    /// <summary>
    /// Local times of day training may run in, <c>HH:mm-HH:mm</c> (may wrap midnight, e.g. <c>22:00-06:00</c>); empty:
    /// any time. Outside it a task waits (between mini-batches too) until the window opens.
    /// </summary>
    public string? TrainingWindow { get; set; }

    /// <summary>Largest share of wall time spent training, in (0, 1]: after each mini-batch the agent rests for batch time × (1/DutyCycle − 1).</summary>
    public double DutyCycle { get; set; } = 1;

    /// <summary>
    /// While this file exists training waits (between mini-batches) and new tasks do not start; relative paths are under
    /// the state directory. <c>federated-client pause</c> and <c>resume</c> create and remove it.
    /// </summary>
    public string PauseFile { get; set; } = "pause";

    /// <summary>How often a paused or out-of-window agent looks again, in seconds.</summary>
    public double PollSeconds { get; set; } = 1;

    /// <summary>The parsed <see cref="TrainingWindow"/>; null when training may run at any time.</summary>
    public (TimeSpan Start, TimeSpan End)? GetTrainingWindow()
    {
        if (string.IsNullOrWhiteSpace(TrainingWindow))
        {
            return null;
        }

        var parts = TrainingWindow.Split('-', StringSplitOptions.TrimEntries);
        if (parts.Length != 2
            || !TimeSpan.TryParseExact(parts[0], @"hh\:mm", CultureInfo.InvariantCulture, out var start)
            || !TimeSpan.TryParseExact(parts[1], @"hh\:mm", CultureInfo.InvariantCulture, out var end)
            || start == end || start.TotalHours >= 24 || end.TotalHours >= 24)
        {
            throw new FormatException($"Client:Resources:TrainingWindow must be HH:mm-HH:mm with two different times (e.g. 22:00-06:00), not '{TrainingWindow}'.");
        }

        return (start, end);
    }

    /// <summary>The budget in bytes; null without one.</summary>
    public long? MemoryBudgetBytes => MemoryBudgetMB > 0 ? MemoryBudgetMB * 1024L * 1024L : null;

    internal void AddErrors(List<string> errors)
    {
        if (MemoryBudgetMB is < 0 or > 16 * 1024 * 1024)
        {
            errors.Add($"Client:Resources:MemoryBudgetMB must be 0 (no budget) or a positive number of MiB, not {MemoryBudgetMB}.");
        }

        try
        {
            GetTrainingWindow();
        }
        catch (FormatException e)
        {
            errors.Add(e.Message);
        }

        if (!(DutyCycle is >= 0.01 and <= 1))
        {
            errors.Add($"Client:Resources:DutyCycle must be between 0.01 and 1 (the share of time spent training), not {DutyCycle}.");
        }

        if (string.IsNullOrWhiteSpace(PauseFile))
        {
            errors.Add("Client:Resources:PauseFile must name a file (relative paths are under the state directory).");
        }

        if (!(PollSeconds is >= 0.01 and <= 3600))
        {
            errors.Add($"Client:Resources:PollSeconds must be between 0.01 and 3600, not {PollSeconds}.");
        }
    }
}
