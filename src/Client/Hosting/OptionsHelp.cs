using System.Globalization;
using Federated.Learning.Data.Partitioning;

namespace Federated.Client.Hosting;

/// <summary>One documented setting of the agent.</summary>
/// <param name="Key">The configuration key, e.g. <c>Client:Threads</c>.</param>
/// <param name="Default">The default value as text.</param>
/// <param name="Description">What it does.</param>
internal sealed record OptionDescription(string Key, string Default, string Description);

/// <summary>The <c>--help</c> text: every option with its description and default, printed before the host starts.</summary>
internal static class OptionsHelp
{
    /// <summary>True when the command line asks for help (<c>--help</c>, <c>-h</c>, <c>-?</c>, <c>/?</c>).</summary>
    public static bool IsRequested(IEnumerable<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Any(a => a is "--help" or "-h" or "-?" or "/?" or "help");
    }

    /// <summary>The options table, defaults taken from a fresh <see cref="ClientOptions"/>.</summary>
    public static IReadOnlyList<OptionDescription> Describe()
    {
        var o = new ClientOptions();
        var d = o.Data;
        var a = o.Attack;
        var ci = CultureInfo.InvariantCulture;
        return
        [
            new("Client:CoordinatorAddress", o.CoordinatorAddress?.OriginalString ?? "", "The coordinator's gRPC address (http or https)."),
            new("Client:AgentId", "(generated)", "This agent's id; when empty one is generated once and kept in the state directory, so restarts re-enrol as the same agent."),
            new("Client:EnrollmentKey", "(empty)", "The shared enrolment secret the coordinator was configured with (empty when it has none)."),
            new("Client:EnrolmentToken", "(empty)", "A one-time enrolment token from 'federated-coordinator agents token': the first enrolment registers this agent's key. Not needed when the key is registered."),
            new("Client:IdentityKeyFile", o.IdentityKeyFile, "The agent's Ed25519 private key, relative to the state directory; created on the first start (mode 0600). The agent logs its public key at start, for 'federated-coordinator agents register'."),
            new("Client:Tls:CaCertificatePath", "(system roots)", "PEM CA certificates to trust for the coordinator's TLS certificate (https addresses)."),
            new("Client:Tls:CertificatePath", "(none)", "Mutual TLS: this agent's client certificate (PEM with KeyPath, or .pfx)."),
            new("Client:Tls:KeyPath", "(none)", "Mutual TLS: the PEM private key of the client certificate."),
            new("Client:Device", o.Device, "auto, cpu or cuda."),
            new("Client:Threads", o.Threads.ToString(ci), "libtorch intra-op threads; 0 = libtorch default (one per core). Several agents sharing one machine should use 1 (the launcher passes 1)."),
            new("Client:StateDirectory", o.StateDirectory, "Where the agent keeps state.json (id, last round, last result), its local model, strategy state, error-feedback residual, pending uploads (pending/), the continual-learning slot (continual/) and status.json; crash-safe, atomic writes."),
            new("Client:Data:Source", d.Source, "idx (IDX image files such as Fashion-MNIST), synthetic (learnable 28x28x1 images), csv (a tabular file with a header) or images (one sub-folder of Directory per class)."),
            new("Client:Data:Directory", "$FEDERATED_DATA or /usr/share/datasets/fashion-mnist", "Directory holding the IDX files (raw or .gz), or the image folder's root."),
            new("Client:Data:Path", "(none)", "csv: the CSV file (header row, numeric features, a label column)."),
            new("Client:Data:LabelColumn", d.LabelColumn, "csv: the label column's header name."),
            new("Client:Data:FeatureColumns", "(all but the label)", "csv: the feature columns, comma-separated."),
            new("Client:Data:Classes", "(numeric labels or sorted names)", "csv: the class names in class order, comma-separated."),
            new("Client:Data:ImageWidth", d.ImageWidth.ToString(ci), "images: width images are resized to."),
            new("Client:Data:ImageHeight", d.ImageHeight.ToString(ci), "images: height images are resized to."),
            new("Client:Data:ImageChannels", d.ImageChannels.ToString(ci), "images: 1 (grey) or 3 (RGB)."),
            new("Client:Data:Split", d.Split, "The IDX split to train on."),
            new("Client:Data:Partition", d.Partition, $"How the data set is split across agents: {Partitioners.Syntax}."),
            new("Client:Data:Clients", d.Clients.ToString(ci), "Number of partitions (agents sharing the data set)."),
            new("Client:Data:Index", d.Index.ToString(ci), "This agent's partition, 0-based, below Clients."),
            new("Client:Data:Seed", d.Seed.ToString(ci), "Seed of the partition and of the synthetic data; every agent of a run must use the same."),
            new("Client:Data:MaxExamples", d.MaxExamples.ToString(ci), "Keep only the first N examples of the partition; 0 keeps all."),
            new("Client:Data:LocalTestFraction", d.LocalTestFraction.ToString(ci), "Fraction of the partition held out, stratified by class, as the local test split (local_test_accuracy in every result); 0 holds out nothing."),
            new("Client:Data:Normalization", d.Normalization, "fashion-mnist, mnist or none."),
            new("Client:Data:SyntheticCount", d.SyntheticCount.ToString(ci), "Samples the synthetic source generates before partitioning."),
            new("Client:Data:SyntheticClasses", d.SyntheticClasses.ToString(ci), "Classes of the synthetic source."),
            new("Client:Training:Precision", o.Training.Precision, "fp32, bf16 or fp16: bf16/fp16 run forward and backward on a low-precision copy of the model with float32 master weights (uploads stay float32); fp16 adds a dynamic loss scale. For GPUs; slower than fp32 on most CPUs."),
            new("Client:Training:InitialLossScale", o.Training.InitialLossScale.ToString(ci), "fp16: the loss scale each run starts from."),
            new("Client:Training:LossScaleGrowthInterval", o.Training.LossScaleGrowthInterval.ToString(ci), "fp16: good steps after which the loss scale doubles; an overflowing step halves it and is skipped."),
            new("Client:Resources:MemoryBudgetMB", o.Resources.MemoryBudgetMB.ToString(ci), "MiB the agent may use for replay buffers and caches (pending uploads, continual-learning state, error-feedback residual, downlink model); 0 = no budget. The replay buffer gets at most half: a larger Client:Continual:ReplayBudget is clamped at start-up (logged); pending uploads are dropped oldest first to fit."),
            new("Client:Resources:TrainingWindow", "(any time)", "Local times training may run in, HH:mm-HH:mm (may wrap midnight, e.g. 22:00-06:00)."),
            new("Client:Resources:DutyCycle", o.Resources.DutyCycle.ToString(ci), "Largest share of wall time spent training, 0.01-1; the agent rests between mini-batches."),
            new("Client:Resources:PauseFile", o.Resources.PauseFile, "While this file exists (relative: under the state directory) training waits; 'federated-client pause' / 'resume' create and remove it."),
            new("Client:Resources:PollSeconds", o.Resources.PollSeconds.ToString(ci), "How often a paused agent looks again."),
            new("Client:ReconnectMinSeconds", o.ReconnectMinSeconds.ToString(ci), "First reconnect delay ceiling in seconds; doubles per failed attempt (exponential backoff with full jitter)."),
            new("Client:ReconnectMaxSeconds", o.ReconnectMaxSeconds.ToString(ci), "Largest reconnect delay in seconds."),
            new("Client:MaxTransferRetries", o.MaxTransferRetries.ToString(ci), "How often a broken download or upload is resumed before the task fails."),
            new("Client:Simulation:DropoutProbability", o.Simulation.DropoutProbability.ToString(ci), "Simulations only: probability that a training task is silently dropped."),
            new("Client:Simulation:Slowdown", o.Simulation.Slowdown.ToString(ci), "Simulations only: training takes this many times longer (straggler)."),
            new("Client:Simulation:Seed", o.Simulation.Seed.ToString(ci), "Simulations only: seed of the dropout draws."),
            new("Client:Simulation:SecAggFault", o.Simulation.SecAggFault, "Simulations only: a secure-aggregation fault: none; keys, shares, input or unmask (silent from that stage on); bad-signature (a corrupt key advertisement)."),
            new("Client:Simulation:SecAggFaultRound", o.Simulation.SecAggFaultRound.ToString(ci), "Simulations only: the round the secure-aggregation fault applies to (0: every round)."),
            new("Client:Continual:Stream", o.Continual.Stream, "Federated continual learning: none, split-task, split-domain, split-class, permuted or drift; the agent learns one experience of its partition at a time."),
            new("Client:Continual:Experiences", o.Continual.Experiences.ToString(ci), "Experiences of a permuted stream, steps of a drift stream (split streams have five)."),
            new("Client:Continual:RoundsPerExperience", o.Continual.RoundsPerExperience.ToString(ci), "Rounds spent on each experience."),
            new("Client:Continual:Offset", o.Continual.Offset.ToString(ci), "Rounds this agent starts its stream late (staggered streams)."),
            new("Client:Continual:Methods", "(none: fine-tuning)", "Comma-separated plug-ins: ewc or online-ewc, replay, lwf. The state lives in continual/ under the state directory."),
            new("Client:Continual:EwcLambda", o.Continual.EwcLambda.ToString(ci), "EWC: lambda."),
            new("Client:Continual:EwcGamma", o.Continual.EwcGamma.ToString(ci), "Online EWC: gamma, in (0, 1]."),
            new("Client:Continual:FisherSamples", o.Continual.FisherSamples.ToString(ci), "EWC: examples the Fisher diagonal is estimated on."),
            new("Client:Continual:ReplayPolicy", o.Continual.ReplayPolicy, "Replay: reservoir, class-balanced or experience-balanced."),
            new("Client:Continual:ReplayBudget", o.Continual.ReplayBudget.ToString(ci), "Replay: buffer size in examples (the examples never leave the agent)."),
            new("Client:Continual:ReplayBatchSize", o.Continual.ReplayBatchSize.ToString(ci), "Replay: examples added to each batch (0: as many as the batch)."),
            new("Client:Continual:LwfAlpha", o.Continual.LwfAlpha.ToString(ci), "LwF: alpha."),
            new("Client:Continual:LwfTemperature", o.Continual.LwfTemperature.ToString(ci), "LwF: temperature."),
            new("Client:Continual:Seed", o.Continual.Seed.ToString(ci), "Seeds the stream's permutations, the Fisher samples and the replay buffer."),
            new("Client:Attack:Kind", a.Kind, $"Experiments only: make this agent Byzantine: {string.Join(", ", ClientAttackOptions.Kinds)}. It trains as usual and then uploads -scale*delta (signflip), scale*delta (scaling), N(0, sigma^2) instead of the delta (noise), the delta of training on labels y -> C-1-y (labelflip), zeros with its example count (zero), mean - z*std (alie) or -epsilon*mean (ipm) of the honest updates."),
            new("Client:Attack:StartRound", a.StartRound.ToString(ci), "The first round the agent attacks in; before it, it is honest."),
            new("Client:Attack:Scale", "1 (signflip), 10 (scaling)", "The multiplier of signflip and scaling."),
            new("Client:Attack:Sigma", a.Sigma.ToString(ci), "noise: standard deviation per coordinate."),
            new("Client:Attack:Z", "from Clients and Attackers", "alie: z; unset, z = Phi^-1((n - s)/n) with s = floor(n/2 + 1) - f (Baruch et al. 2019)."),
            new("Client:Attack:Clients", a.Clients.ToString(ci), "alie without Z: n, the updates aggregated per round."),
            new("Client:Attack:Attackers", a.Attackers.ToString(ci), "alie without Z: f, the colluding attackers among them."),
            new("Client:Attack:Epsilon", a.Epsilon.ToString(ci), "ipm: epsilon (Xie et al. 2020)."),
            new("Client:Attack:Variant", a.Variant, "alie, ipm: omniscient (the round's honest updates, from the in-process simulator's colluding channel) or estimated (EstimateRuns local runs on bootstrap resamples of the own data)."),
            new("Client:Attack:EstimateRuns", a.EstimateRuns.ToString(ci), "estimated variant: local runs behind the mean and deviation (at least 2)."),
            new("Client:Attack:WaitSeconds", a.WaitSeconds.ToString(ci), "omniscient variant: longest wait for the honest updates; then the agent uses those it has (its own delta if none)."),
            new("Client:Attack:Seed", a.Seed.ToString(ci), "Seed of the noise draws (mixed with the agent id and the round)."),
        ];
    }

    /// <summary>Writes the help text.</summary>
    public static void Write(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteLine("federated-client: the Federated client agent. Enrols with a coordinator, trains the global model on local data");
        writer.WriteLine("and uploads model updates, reconnecting on its own when the coordinator restarts.");
        writer.WriteLine();
        writer.WriteLine("Usage: federated-client [--Client:Key=value ...]          run the agent");
        writer.WriteLine("       federated-client status [--json] [--Client:...]  identity, device, round, last result, queued work");
        writer.WriteLine("       federated-client pause | resume [--Client:...]   pause or resume training (the pause file)");
        writer.WriteLine();
        writer.WriteLine("Settings come from appsettings.json, then environment variables (FEDERATED_CLIENT__Key or Client__Key,");
        writer.WriteLine("'__' separating sections, e.g. FEDERATED_CLIENT__Data__Index=3), then the command line (highest).");
        writer.WriteLine();
        writer.WriteLine("Options:");
        var rows = Describe();
        var width = rows.Max(r => r.Key.Length) + 2;
        foreach (var row in rows)
        {
            writer.WriteLine($"  --{row.Key.PadRight(width)}{row.Description}");
            writer.WriteLine($"    {new string(' ', width)}Default: {row.Default}");
        }

        writer.WriteLine();
        writer.WriteLine("  -h, --help  Show this help and exit.");
        writer.WriteLine();
        writer.WriteLine("Exit codes: 0 after a coordinator's shutdown or Ctrl+C; 2 for invalid options, an incompatible protocol");
        writer.WriteLine("or a refused enrolment; 1 for an unexpected failure.");
    }
}
