using Federated.Client.Agent;
using Federated.Client.State;
using Federated.Learning.Compression;
using Federated.Learning.Data;
using Federated.Learning.Models;
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
/// <param name="Metrics">Metrics the update's stages add to the result (<c>dp_clipped</c> when the delta was clipped for differential privacy).</param>
public sealed record TrainOutcome(SealedPayload Update, TrainingReport Report, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// The synchronous TorchSharp side of the agent: holds the local data, the model (built on the first task from
/// its name and the data's sample shape, reused while name and layout stay the same) and the strategy's local
/// state between rounds. Call it from one background thread at a time, never across an <c>await</c>.
/// </summary>
public sealed class LocalTrainingService : IDisposable
{
    private readonly ComputeContext _compute;
    private readonly AgentStateStore _store;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, float[]> _localState;
    private readonly UploadEncoder _uploads;
    private readonly DownlinkModel _downlink;
    private string? _localStateFingerprint;
    private nn.Module<Tensor, Tensor>? _model;
    private ModelWeights? _weights;
    private string? _modelName;

    /// <summary>Takes ownership of <paramref name="data"/>; restores the strategy state from <paramref name="store"/>.</summary>
    public LocalTrainingService(TensorDataset data, ComputeContext compute, AgentStateStore store, AgentState restored, ILogger logger, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(compute);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(restored);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(time);
        Data = data;
        _compute = compute;
        _store = store;
        _logger = logger;
        _time = time;
        _localState = store.LoadLocalState();
        _localStateFingerprint = restored.LayoutFingerprint;
        _uploads = new UploadEncoder(store, restored.LayoutFingerprint, logger);
        _downlink = new DownlinkModel(store);
    }

    /// <summary>The local data set.</summary>
    public TensorDataset Data { get; }

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
    /// model this agent holds), trains it on the local data and seals the update (<c>model</c> = local − global, dense
    /// or encoded with the task's <c>uplink_codec</c>, plus the strategy's extra tensors, dense) for upload as
    /// <paramref name="transferId"/>. When the task's configuration carries a clipping bound
    /// (<see cref="AgentClipping.BoundKey"/>, differential privacy with agent-side clipping), the delta is clipped to it
    /// before it is encoded and the outcome reports whether it was.
    /// </summary>
    public TrainOutcome Train(TrainTask task, byte[] payloadBytes, string transferId, int chunkBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(payloadBytes);
        var options = ToTrainingOptions(task.Training);
        var payload = PayloadCodec.Parse(payloadBytes, task.LayoutFingerprint);
        var weights = EnsureModel(task.ModelName, task.LayoutFingerprint);
        var upload = UploadSettings.From(task.Config);
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
        var plugins = ClientAlgorithmsAdapter.Create(round);
        try
        {
            var report = new LocalTrainer(plugins, _time).Train(_model!, Data, options, cancellationToken);
            if (report.Cancelled)
            {
                throw new OperationCanceledException("Local training was cancelled.", cancellationToken);
            }

            var local = weights.Flatten();
            var delta = new float[local.Length];
            WeightVectors.Delta(local, global, delta);
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
            if (AgentClipping.Apply(delta, round.Config) is { } clip)
            {
                AgentClipping.Report(clip, metrics);
            }

            var update = new Payload { LayoutFingerprint = weights.Layout.Fingerprint };
            if (upload is null)
            {
                PayloadCodec.AddDense(update, PayloadCodec.ModelTensor, delta);
            }
            else
            {
                var random = CodecRandom.ForSender(transferId, task.Training?.Seed ?? 0, task.Round);
                PayloadCodec.AddEncoded(update, PayloadCodec.ModelTensor, _uploads.Encode(upload, delta, weights.Layout.Fingerprint, random), delta.Length);
            }

            var names = new HashSet<string>(StringComparer.Ordinal) { PayloadCodec.ModelTensor };
            foreach (var plugin in plugins)
            {
                foreach (var (name, values) in plugin.Complete(round, report))
                {
                    if (!names.Add(name))
                    {
                        throw new InvalidOperationException($"Two client algorithms (or one and the model) upload a tensor named '{name}'.");
                    }

                    PayloadCodec.AddDense(update, name, values);
                }
            }

            update.Metadata["round"] = task.Round.ToString(System.Globalization.CultureInfo.InvariantCulture);
            update.Metadata["task_id"] = task.TaskId;
            return new TrainOutcome(new SealedPayload(transferId, update, chunkBytes), report, metrics);
        }
        finally
        {
            foreach (var plugin in plugins)
            {
                (plugin as IDisposable)?.Dispose();
            }
        }
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

    /// <summary>Writes the local model, the strategy state, the compression state and then <c>state.json</c> (each atomically).</summary>
    public void Persist(AgentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (_weights is not null && _modelName is not null)
        {
            _store.SaveModel(_weights, _modelName);
        }

        _store.SaveLocalState(_localState);
        _uploads.Persist();
        _downlink.Persist();
        _store.Save(state with
        {
            ModelName = _modelName ?? state.ModelName,
            LayoutFingerprint = _weights?.Layout.Fingerprint ?? state.LayoutFingerprint,
            SavedAt = _time.GetUtcNow(),
        });
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
        _model?.Dispose();
        _model = null;
        _weights = null;
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
