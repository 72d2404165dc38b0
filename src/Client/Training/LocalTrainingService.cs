using Federated.Client.Agent;
using Federated.Client.Attacks;
using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Learning.Compression;
using Federated.Learning.Continual;
using Federated.Learning.Data;
using Federated.Learning.Data.Partitioning;
using Federated.Learning.Models;
using Federated.Learning.Personalization;
using Federated.Learning.Privacy;
using Federated.Learning.Runtime;
using Federated.Learning.Strategies;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Client.Training;

/// <summary>The outcome of one local training run: the sealed update to upload, the trainer's report and extra metrics.</summary>
/// <param name="Update">The update payload (delta plus the strategy's extra tensors), ready to upload.</param>
/// <param name="Report">Per-epoch metrics and step count.</param>
/// <param name="Metrics">Metrics the run adds to the result (<see cref="LocalUpdate.Metrics"/>, and <c>dp_clipped</c> when the delta was clipped for differential privacy).</param>
internal sealed record TrainOutcome(SealedPayload Update, TrainingReport Report, IReadOnlyDictionary<string, double> Metrics);

/// <summary>One local training run before it is sealed: what the agent's attack stage (if any) works on.</summary>
/// <param name="Task">The task.</param>
/// <param name="LayoutFingerprint">The model's layout.</param>
/// <param name="Delta">Local model minus global model.</param>
/// <param name="Tensors">The strategy's extra tensors to upload (e.g. SCAFFOLD's control delta), in order.</param>
/// <param name="Report">Per-epoch metrics and step count.</param>
/// <param name="Estimates">
/// The deltas of the extra runs on bootstrap resamples that an estimated ALIE or IPM attack asked for (else empty).
/// </param>
internal sealed record LocalUpdate(TrainTask Task, string LayoutFingerprint, float[] Delta, IReadOnlyList<KeyValuePair<string, float[]>> Tensors, TrainingReport Report, IReadOnlyList<float[]> Estimates)
{
    /// <summary>
    /// Metrics the run adds to the result: <c>local_test_accuracy</c>, <c>local_test_loss</c> and
    /// <c>local_test_examples</c> with a local test split, and what a personalisation algorithm reports.
    /// </summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>(StringComparer.Ordinal);
}

/// <summary>
/// The synchronous TorchSharp side of the agent: holds the local data, the model (built on the first task from
/// its name and the data's sample shape, reused while name and layout stay the same) and the strategy's local
/// state between rounds. Call it from one background thread at a time, never across an <c>await</c>.
/// </summary>
internal sealed class LocalTrainingService : IDisposable
{
    private readonly ComputeContext _compute;
    private readonly AgentStateStore _store;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly AttackStage _attack;
    private readonly Dictionary<string, float[]> _localState;
    private readonly UploadEncoder _uploads;
    private readonly DownlinkModel _downlink;
    private readonly AgentContinual? _continual;
    private readonly ClientTrainingOptions _training;
    private readonly TensorDataset? _localTest;
    private TensorDataset? _poisoned;
    private string? _localStateFingerprint;
    private nn.Module<Tensor, Tensor>? _model;
    private ModelWeights? _weights;
    private string? _modelName;

    /// <summary>
    /// Takes ownership of <paramref name="data"/>; restores the strategy state from <paramref name="store"/>.
    /// <paramref name="attack"/> (honest when null) decides which rounds train on flipped labels and which need
    /// bootstrap estimates. With <paramref name="continual"/> enabled the agent moves through its stream of experiences
    /// (restoring the continual state from the store's <c>continual/</c> slot). <paramref name="training"/> sets the
    /// precision every run computes in (fp32 when null). Takes ownership of <paramref name="localTest"/> too: the agent's
    /// local test split, on which every training run first evaluates the model the agent uses (see <see cref="TrainLocal"/>).
    /// </summary>
    public LocalTrainingService(TensorDataset data, ComputeContext compute, AgentStateStore store, AgentState restored, ILogger logger, TimeProvider time, AttackStage? attack = null, ClientContinualOptions? continual = null, ClientTrainingOptions? training = null, TensorDataset? localTest = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(compute);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(restored);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(time);
        Data = data;
        _localTest = localTest;
        _compute = compute;
        _store = store;
        _logger = logger;
        _time = time;
        _attack = attack ?? AttackStage.Honest;
        _localState = store.LoadLocalState();
        _localStateFingerprint = restored.LayoutFingerprint;
        _uploads = new UploadEncoder(store, restored.LayoutFingerprint, logger);
        _downlink = new DownlinkModel(store);
        _training = training ?? new ClientTrainingOptions();
        Precision = _training.GetPrecision();
        TrainingExamples = data.Count;
        if (continual is { Enabled: true })
        {
            _continual = new AgentContinual(continual, data, store.ContinualDirectory, compute.Device);
        }
    }

    /// <summary>The continual-learning side (null unless <c>Client:Continual:Stream</c> names a stream).</summary>
    public AgentContinual? Continual => _continual;

    /// <summary>Examples the latest training run trained on (the FedAvg weight): the local data, or the current experience's.</summary>
    public int TrainingExamples { get; private set; }

    /// <summary>The local data set.</summary>
    public TensorDataset Data { get; }

    /// <summary>The local test split (null without one).</summary>
    public TensorDataset? LocalTest => _localTest;

    /// <summary>The resource limits every local training run is held to (none when null).</summary>
    public ResourceGate? Gate { get; set; }

    /// <summary>The device's name: <c>cpu</c> or <c>cuda:N</c>.</summary>
    public string DeviceName => _compute.IsCuda ? $"cuda:{Math.Max(0, (int)_compute.Device.index)}" : "cpu";

    /// <summary>The precision local training computes in (the weights and the uploaded update are float32 regardless).</summary>
    public TrainingPrecision Precision { get; }

    /// <summary>
    /// Bytes of the caches <c>Client:Resources:MemoryBudgetMB</c> covers besides pending uploads: the continual state
    /// (the replay buffer at its full budget, EWC terms, the LwF teacher), the error-feedback residual and the
    /// reconstructed downlink model.
    /// </summary>
    public long CacheBytes()
    {
        var bytes = (_uploads.Residual.Length * (long)sizeof(float)) + _downlink.Bytes;
        if (_continual is not null)
        {
            bytes += MemoryBudget.ContinualBytes(_continual.State, MemoryBudget.ReplayExampleBytes(Data.SampleShape));
        }

        return bytes;
    }

    /// <summary>The current model's name (null before the first task).</summary>
    public string? ModelName => _modelName;

    /// <summary>The current model's layout fingerprint (null before the first task).</summary>
    public string? LayoutFingerprint => _weights?.Layout.Fingerprint;

    /// <summary>The strategy state kept between rounds (e.g. SCAFFOLD's c_local).</summary>
    public IReadOnlyDictionary<string, float[]> LocalState => _localState;

    /// <summary>The upload error-feedback residual (empty before the first compressed upload with error feedback).</summary>
    internal ReadOnlySpan<float> UploadResidual => _uploads.Residual;

    /// <summary>The version of the reconstructed global model (null without a compressed downlink).</summary>
    internal string? DownlinkVersion => _downlink.Version;

    /// <summary>Maps the wire's training configuration onto the trainer's options (zero fields take the defaults).</summary>
    public static TrainingOptions ToTrainingOptions(TrainingConfig? config)
    {
        var defaults = new TrainingOptions();
        if (config is null)
        {
            return defaults;
        }

        var optimizer = config.Optimizer.Trim().ToUpperInvariant() switch
        {
            "" or "SGD" => OptimizerKind.Sgd,
            "ADAM" => OptimizerKind.Adam,
            "ADAMW" => OptimizerKind.AdamW,
            _ => throw new ArgumentException($"Unknown optimizer '{config.Optimizer}': use sgd, adam or adamw."),
        };
        var options = defaults with
        {
            Epochs = config.Epochs > 0 ? config.Epochs : defaults.Epochs,
            BatchSize = config.BatchSize > 0 ? config.BatchSize : defaults.BatchSize,
            Optimizer = optimizer,
            LearningRate = config.LearningRate > 0 ? config.LearningRate : defaults.LearningRate,
            Momentum = config.Momentum,
            WeightDecay = config.WeightDecay,
            GradientClipNorm = config.GradientClipNorm,
            Seed = config.Seed,
        };
        options.Validate();
        return options;
    }

    /// <summary>
    /// Loads the global model from <paramref name="payloadBytes"/> (the full model, or a compressed delta against the
    /// model this agent holds), trains it on the local data and seals the update for upload as
    /// <paramref name="transferId"/>: <see cref="TrainLocal"/> then <see cref="Seal"/>, without an attack stage.
    /// </summary>
    public TrainOutcome Train(TrainTask task, byte[] payloadBytes, string transferId, int chunkBytes, CancellationToken cancellationToken)
    {
        var local = TrainLocal(task, payloadBytes, cancellationToken);
        return Seal(local, local.Delta, transferId, chunkBytes);
    }

    /// <summary>
    /// Seals <paramref name="delta"/> (the update's delta, or what an attack stage made of it) for upload as
    /// <paramref name="transferId"/>: clipped first when the task's configuration carries a clipping bound
    /// (<see cref="AgentClipping.BoundKey"/>, differential privacy with agent-side clipping; the outcome reports whether
    /// it was), then dense or encoded with the task's <c>uplink_codec</c> (with the error-feedback residual persisted in
    /// the state directory), plus the strategy's extra tensors, dense.
    /// </summary>
    public TrainOutcome Seal(LocalUpdate update, float[] delta, string transferId, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(update);
        ArgumentNullException.ThrowIfNull(delta);
        var task = update.Task;
        var metrics = new Dictionary<string, double>(update.Metrics, StringComparer.Ordinal);
        if (AgentClipping.Apply(delta, task.Config) is { } clip)
        {
            AgentClipping.Report(clip, metrics);
        }

        var payload = new Payload { LayoutFingerprint = update.LayoutFingerprint };
        if (UploadSettings.From(task.Config) is not { } upload)
        {
            PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, delta);
        }
        else
        {
            var random = CodecRandom.ForSender(transferId, task.Training?.Seed ?? 0, task.Round);
            PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, _uploads.Encode(upload, delta, update.LayoutFingerprint, random), delta.Length);
        }

        foreach (var (name, values) in update.Tensors)
        {
            PayloadCodec.AddDense(payload, name, values);
        }

        payload.Metadata["round"] = task.Round.ToString(System.Globalization.CultureInfo.InvariantCulture);
        payload.Metadata["task_id"] = task.TaskId;
        return new TrainOutcome(new SealedPayload(transferId, payload, chunkBytes), update.Report, metrics);
    }

    /// <summary>
    /// Loads the global model from <paramref name="payloadBytes"/> and trains it on the local data (on flipped labels
    /// when the attack stage poisons this round), returning the delta and the strategy's extra tensors unsealed.
    /// When the attack stage estimates the honest updates from the agent's own data, the extra runs follow, each from
    /// the global model on a bootstrap resample of the local data (same size, drawn with replacement, seeded by the
    /// task's seed), with plain local training (no strategy plug-ins); the model keeps the main run's weights.
    /// <para>
    /// With a local test split, the run first evaluates on it the model the agent uses on its own data when the task
    /// arrives: the global model, or what the round's personalisation algorithm makes of it (FedPer: the global body
    /// under the agent's head; Ditto: the agent's personal model), reported as <c>local_test_accuracy</c>. A
    /// personalisation algorithm also sets the weights training starts from and, after training, keeps its local part.
    /// </para>
    /// </summary>
    public LocalUpdate TrainLocal(TrainTask task, byte[] payloadBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(payloadBytes);
        var options = _training.Apply(ToTrainingOptions(task.Training));
        var payload = PayloadCodec.Parse(payloadBytes, task.LayoutFingerprint);
        var weights = EnsureModel(task.ModelName, task.LayoutFingerprint);
        var global = _downlink.Resolve(payload, weights.Layout.Fingerprint, checked((int)weights.Layout.TotalLength));
        var serverTensors = PayloadCodec.ReadAllDense(payload, PayloadCodec.ModelTensor);
        weights.Load(global);

        var round = new ClientRound
        {
            Round = task.Round,
            Config = new Dictionary<string, string>(task.Config, StringComparer.Ordinal),
            Global = global,
            ServerTensors = serverTensors,
            Weights = weights,
            Training = options,
            LocalState = _localState,
        };
        var data = TrainingData(task.Round);
        IReadOnlyList<ITrainingPlugin> continualPlugins = [];
        IDisposable? scratch = null;
        float[]? fisherUpload = null;
        if (_continual is not null)
        {
            var (experience, crossed) = _continual.Prepare(task.Round, _model!, CreateModel);
            data = experience;
            AgentLog.ContinualExperience(_logger, task.Round, _continual.State.Experience, _continual.Count, experience.Count, crossed ? "; the previous experience was consolidated and the continual state saved" : "");
            (continualPlugins, scratch) = _continual.TrainingPlugins(serverTensors, weights.Layout, CreateModel);
            var consolidate = round.Config.TryGetValue(FisherConsolidation.ConfigKey, out var flag) && string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase);
            if (crossed && consolidate)
            {
                fisherUpload = _continual.LatestFisher(weights.Layout);
            }
        }

        TrainingExamples = data.Count;
        var plugins = ClientAlgorithmsAdapter.Create(round);
        var personal = plugins.OfType<IPersonalizedAlgorithm>().ToList();
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        try
        {
            EvaluateLocalTest(personal, global, weights, metrics);
            if (personal.Count > 0)
            {
                var start = global.ToArray();
                foreach (var algorithm in personal)
                {
                    algorithm.TrainingStart(start);
                }

                weights.Load(start);
            }

            Gate?.Attach(cancellationToken);
            var hooks = plugins.Cast<ITrainingPlugin>().Concat(continualPlugins).ToList();
            if (Gate is not null)
            {
                hooks.Add(Gate);
            }

            var report = new LocalTrainer(hooks, _time, CreateModel).Train(_model!, data, options, cancellationToken);
            if (report.Cancelled)
            {
                throw new OperationCanceledException("Local training was cancelled.", cancellationToken);
            }

            var local = weights.Flatten();
            foreach (var algorithm in personal)
            {
                var extra = algorithm.Personalize(round, local, (more, personalOptions) =>
                {
                    // The personal pass: the algorithm's own plug-ins and the resource gate, not the continual plug-ins
                    // (their state follows the shared model's training).
                    var personalHooks = more.ToList();
                    if (Gate is not null)
                    {
                        personalHooks.Add(Gate);
                    }

                    return new LocalTrainer(personalHooks, _time, CreateModel).Train(_model!, data, personalOptions, cancellationToken);
                });
                foreach (var (key, value) in extra)
                {
                    metrics[key] = value;
                }
            }

            var delta = new float[local.Length];
            WeightVectors.Delta(local, global, delta);
            var tensors = new List<KeyValuePair<string, float[]>>();
            var names = new HashSet<string>(StringComparer.Ordinal) { PayloadCodec.ModelTensor };
            foreach (var plugin in plugins)
            {
                foreach (var (name, values) in plugin.Complete(round, report))
                {
                    if (!names.Add(name))
                    {
                        throw new InvalidOperationException($"Two client algorithms (or one and the model) upload a tensor named '{name}'.");
                    }

                    tensors.Add(new(name, values));
                }
            }

            if (fisherUpload is not null)
            {
                if (!names.Add(FisherConsolidation.FisherKey))
                {
                    throw new InvalidOperationException($"A client algorithm uploads a tensor named '{FisherConsolidation.FisherKey}', which Fisher consolidation needs.");
                }

                tensors.Add(new(FisherConsolidation.FisherKey, fisherUpload));
            }

            var estimates = BootstrapDeltas(_attack.EstimateRuns(task.Round), weights, global, options, cancellationToken);
            weights.Load(local);
            return new LocalUpdate(task, weights.Layout.Fingerprint, delta, tensors, report, estimates) { Metrics = metrics };
        }
        finally
        {
            foreach (var plugin in plugins)
            {
                (plugin as IDisposable)?.Dispose();
            }

            scratch?.Dispose();
        }
    }

    /// <summary>
    /// Evaluates the model the agent uses (the global model in <paramref name="weights"/>, or what
    /// <paramref name="personal"/> makes of it) on the local test split, into <paramref name="metrics"/>; leaves the
    /// global model loaded. Does nothing without a local test split.
    /// </summary>
    private void EvaluateLocalTest(List<IPersonalizedAlgorithm> personal, float[] global, ModelWeights weights, Dictionary<string, double> metrics)
    {
        if (_localTest is null)
        {
            return;
        }

        if (personal.Count > 0)
        {
            var used = global.ToArray();
            foreach (var algorithm in personal)
            {
                algorithm.PersonalModel(used);
            }

            weights.Load(used);
        }

        var result = Evaluator.Evaluate(_model!, _localTest);
        metrics[LocalTestAccuracyKey] = result.Accuracy;
        metrics["local_test_loss"] = result.Loss;
        metrics["local_test_examples"] = result.Samples;
        if (personal.Count > 0)
        {
            weights.Load(global);
        }
    }

    /// <summary>The result metric carrying the agent's local test accuracy.</summary>
    public const string LocalTestAccuracyKey = "local_test_accuracy";

    private nn.Module<Tensor, Tensor> CreateModel() =>
        ModelFactory.Create(_modelName!, ModelShape.FromSample(Data.SampleShape, Data.NumClasses), _compute.Device);

    /// <summary><paramref name="runs"/> deltas, each of plain local training from <paramref name="global"/> on a bootstrap resample.</summary>
    private List<float[]> BootstrapDeltas(int runs, ModelWeights weights, float[] global, TrainingOptions options, CancellationToken cancellationToken)
    {
        var deltas = new List<float[]>(runs);
        for (var run = 0; run < runs; run++)
        {
            var random = new StableRandom(unchecked(((ulong)options.Seed * 0x9E37_79B9_7F4A_7C15UL) + (ulong)run + 0xB0075UL));
            var indices = new int[Data.Count];
            for (var i = 0; i < indices.Length; i++)
            {
                indices[i] = random.Next(Data.Count);
            }

            weights.Load(global);
            using var resample = Data.Subset(indices, $"{Data.Name} bootstrap {run + 1}");
            var report = new LocalTrainer(null, _time, CreateModel).Train(_model!, resample, options with { Seed = unchecked(options.Seed + 1 + run) }, cancellationToken);
            if (report.Cancelled)
            {
                throw new OperationCanceledException("Local training was cancelled.", cancellationToken);
            }

            var delta = new float[global.Length];
            WeightVectors.Delta(weights.Flatten(), global, delta);
            deltas.Add(delta);
        }

        return deltas;
    }

    /// <summary>
    /// What <paramref name="round"/> trains on: the local data, or, when the attack stage poisons the round, the same
    /// samples with every label y replaced by C − 1 − y (built on first use).
    /// </summary>
    internal TensorDataset TrainingData(int round)
    {
        if (!_attack.PoisonsData(round))
        {
            return Data;
        }

        if (_poisoned is null)
        {
            var labels = Data.Labels.ToArray();
            for (var i = 0; i < labels.Length; i++)
            {
                labels[i] = UpdateAttacks.FlipLabel(labels[i], Data.NumClasses);
            }

            _poisoned = Data.WithLabels(labels, $"{Data.Name} (labels flipped)");
        }

        return _poisoned;
    }

    /// <summary>Loads the model in <paramref name="payloadBytes"/> and evaluates it on the local data.</summary>
    public EvaluationResult Evaluate(EvaluateTask task, byte[] payloadBytes)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(payloadBytes);
        var payload = PayloadCodec.Parse(payloadBytes, task.LayoutFingerprint);
        var weights = EnsureModel(task.ModelName, task.LayoutFingerprint);
        weights.Load(PayloadCodec.ReadDense(payload, PayloadCodec.ModelTensor, weights.Layout.TotalLength));
        return Evaluator.Evaluate(_model!, Data);
    }

    /// <summary>
    /// Commits <paramref name="payload"/> as a pending upload with the state right after sealing it (error-feedback
    /// residual, strategy state), before the upload starts; see <see cref="AgentStateStore.SavePending"/>.
    /// </summary>
    public void SavePending(SealedPayload payload, UploadHeader header, TaskResult result)
    {
        ArgumentNullException.ThrowIfNull(payload);
        _store.SavePending(payload, header, result, _uploads.Feedback, _localState, _time.GetUtcNow());
    }

    /// <summary>
    /// Writes the local model, the strategy state, the compression state and then <c>state.json</c> (each atomically);
    /// returns the state as written (with the model's name, layout and the device), which the caller should keep.
    /// </summary>
    public AgentState Persist(AgentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (_weights is not null && _modelName is not null)
        {
            _store.SaveModel(_weights, _modelName);
        }

        _store.SaveLocalState(_localState);
        _continual?.Save();
        _uploads.Persist();
        _downlink.Persist();
        var saved = state with
        {
            ModelName = _modelName ?? state.ModelName,
            LayoutFingerprint = _weights?.Layout.Fingerprint ?? state.LayoutFingerprint,
            Device = DeviceName,
            SavedAt = _time.GetUtcNow(),
        };
        _store.Save(saved);
        return saved;
    }

    /// <summary>Sets libtorch's intra-op threads.</summary>
    public static void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        torch.set_num_threads(threads);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _continual?.Dispose();
        _model?.Dispose();
        _model = null;
        _weights = null;
        _poisoned?.Dispose();
        _poisoned = null;
        _localTest?.Dispose();
        Data.Dispose();
    }

    private ModelWeights EnsureModel(string name, string expectedFingerprint)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException("The task names no model.");
        }

        if (_model is null || _weights is null || !string.Equals(_modelName, name, StringComparison.Ordinal))
        {
            _model?.Dispose();
            _model = null;
            _weights = null;
            var shape = ModelShape.FromSample(Data.SampleShape, Data.NumClasses);
            var model = ModelFactory.Create(name, shape, _compute.Device);
            _model = model;
            _weights = new ModelWeights(model);
            _modelName = name;
            AgentLog.ModelBuilt(_logger, name, _weights.Layout.Fingerprint, _weights.Layout.TotalLength, _compute.Description);
            if (_store.TryLoadModel(_weights))
            {
                AgentLog.ModelRestored(_logger, _store.ModelPath, _weights.Layout.Fingerprint);
            }
        }

        var fingerprint = _weights.Layout.Fingerprint;
        if (!string.Equals(fingerprint, expectedFingerprint, StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"Model '{name}' built for this agent's data (sample shape [{string.Join(", ", Data.SampleShape)}], {Data.NumClasses} classes) has layout {fingerprint}, " +
                $"but the task expects layout {expectedFingerprint}: the coordinator and this agent disagree on the model or the data shape.");
        }

        if (_localState.Count > 0 && !string.Equals(_localStateFingerprint, fingerprint, StringComparison.Ordinal))
        {
            AgentLog.LocalStateDropped(_logger, _localState.Count, _localStateFingerprint ?? "(none)", fingerprint);
            _localState.Clear();
        }

        _localStateFingerprint = fingerprint;
        return _weights;
    }
}
