using Federated.Coordinator.Hosting;
using Federated.Learning.Continual;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using Microsoft.Extensions.Options;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Coordinator.Rounds;

/// <summary>The coordinator's copy of the model: the initial weights, the layout, and server-side evaluation.</summary>
internal sealed class ServerModel : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly TensorDataset? _evaluation;
    private readonly int _evaluationBatch;
    private readonly TorchThread _torch = new("federated-coordinator-torch");
    private readonly IExperienceSequence? _experiences;

    /// <summary>Builds the model and loads the evaluation data named by the options.</summary>
    public ServerModel(IOptions<CoordinatorOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Value;
        Compute = TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Auto, Threads = o.Evaluation.Threads });
        ModelName = o.Model.Trim().ToLowerInvariant();
        _model = ModelFactory.Create(ModelName, new ModelShape(o.ResolvedInputShape[0], o.ResolvedInputShape[1], o.ResolvedInputShape[2], o.NumClasses), Compute.Device, o.Seed);
        Weights = new ModelWeights(_model);
        Initial = Weights.Flatten();
        _evaluationBatch = o.Evaluation.BatchSize;
        var normalization = o.Evaluation.Normalization switch
        {
            "mnist" => Normalization.Mnist,
            "none" => Normalization.None,
            _ => Normalization.FashionMnist,
        };
        ILabelledSource? source = o.Evaluation.Source switch
        {
            "idx" => IdxImageSource.LoadSplit(o.Evaluation.Directory, o.Evaluation.Split),
            "synthetic" => SyntheticImages.Create(o.Evaluation.SyntheticCount, o.ResolvedInputShape, o.NumClasses, (int)o.Seed + 7919),
            _ => null,
        };
        if (source is not null)
        {
            if (!source.SampleShape.SequenceEqual(o.ResolvedInputShape))
            {
                throw new InvalidOperationException(
                    $"Evaluation data '{source.Name}' has samples shaped [{string.Join(", ", source.SampleShape)}] but Coordinator:InputShape is [{string.Join(", ", o.ResolvedInputShape)}].");
            }

            _evaluation = TensorDataset.Materialize(source, normalization, Compute.Device, Math.Max(source.NumClasses, o.NumClasses));
            if (o.Continual is { Stream: not "none" } continual)
            {
                _experiences = ContinualStreams.Create(continual.Stream, _evaluation, _evaluation, continual.Experiences, continual.Seed);
            }
        }
    }

    /// <summary>Experiences whose test splits <see cref="EvaluateExperiencesAsync"/> measures (0 without a stream).</summary>
    public int Experiences => _experiences?.Count ?? 0;

    /// <summary>
    /// The accuracy of <paramref name="global"/> on each experience's test split of the evaluation data (on the
    /// coordinator's torch thread); null without a continual stream or evaluation data.
    /// </summary>
    public Task<double[]?> EvaluateExperiencesAsync(float[] global, CancellationToken cancellationToken = default)
    {
        if (_experiences is not { } stream)
        {
            return Task.FromResult<double[]?>(null);
        }

        return _torch.RunAsync<double[]?>(() =>
        {
            Weights.Load(global);
            return Enumerable.Range(0, stream.Count).Select(j => ContinualEvaluation.Accuracy(_model, stream.Test(j), _evaluationBatch)).ToArray();
        }, cancellationToken);
    }

    /// <summary>The device and thread settings.</summary>
    public ComputeContext Compute { get; }

    /// <summary>The architecture name.</summary>
    public string ModelName { get; }

    /// <summary>The weights binding (layout and fingerprint).</summary>
    public ModelWeights Weights { get; }

    /// <summary>The freshly initialised global model.</summary>
    public float[] Initial { get; }

    /// <summary>Samples in the evaluation set (0 when there is none).</summary>
    public int EvaluationSamples => _evaluation?.Count ?? 0;

    /// <summary>Evaluates <paramref name="global"/> on the held-out data (on the coordinator's torch thread); null when there is none.</summary>
    public Task<EvaluationResult?> EvaluateAsync(float[] global, CancellationToken cancellationToken = default)
    {
        if (_evaluation is null)
        {
            return Task.FromResult<EvaluationResult?>(null);
        }

        return _torch.RunAsync<EvaluationResult?>(() =>
        {
            Weights.Load(global);
            return Evaluator.Evaluate(_model, _evaluation, _evaluationBatch);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _torch.Dispose();
        _experiences?.Dispose();
        _model.Dispose();
        _evaluation?.Dispose();
    }
}
