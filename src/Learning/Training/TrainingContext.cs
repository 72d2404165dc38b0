using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Training;

/// <summary>What the loop shares with its plug-ins. The batch fields are valid only inside batch hooks.</summary>
public sealed class TrainingContext
{
    internal TrainingContext(nn.Module<Tensor, Tensor> model, Optimizers.LocalOptimizer optimizer, TrainingOptions options, Data.TensorDataset data, CancellationToken cancellationToken)
    {
        Model = model;
        Optimizer = optimizer;
        Options = options;
        Data = data;
        CancellationToken = cancellationToken;
    }

    /// <summary>The model being trained.</summary>
    public nn.Module<Tensor, Tensor> Model { get; }

    /// <summary>The optimiser.</summary>
    public Optimizers.LocalOptimizer Optimizer { get; }

    /// <summary>The run's options.</summary>
    public TrainingOptions Options { get; }

    /// <summary>The local data.</summary>
    public Data.TensorDataset Data { get; }

    /// <summary>Cancels the run between batches.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Current epoch, from 0.</summary>
    public int Epoch { get; internal set; }

    /// <summary>Current batch within the epoch, from 0.</summary>
    public int BatchIndex { get; internal set; }

    /// <summary>Optimiser steps taken so far in this run.</summary>
    public long Step { get; internal set; }

    /// <summary>The batch's inputs (replaceable in <see cref="ITrainingPlugin.BeforeBatch"/>).</summary>
    public Tensor? Inputs { get; set; }

    /// <summary>The batch's int64 targets (replaceable in <see cref="ITrainingPlugin.BeforeBatch"/>).</summary>
    public Tensor? Targets { get; set; }

    /// <summary>The model's output for the batch (float32 logits; with bf16 or fp16, the working copy's, cast up).</summary>
    public Tensor? Output { get; internal set; }

    /// <summary>The cross-entropy of the batch, before plug-in penalties.</summary>
    public Tensor? DataLoss { get; internal set; }

    /// <summary>The loss that is back-propagated; plug-ins add penalties to it in <see cref="ITrainingPlugin.AfterForward"/>.</summary>
    public Tensor? Loss { get; set; }

    /// <summary>Metrics of the epoch that just ended (set before <see cref="ITrainingPlugin.AfterEpoch"/>).</summary>
    public EpochMetrics? LastEpoch { get; internal set; }

    /// <summary>The precision the forward and backward passes run in (<see cref="Model"/> always holds the float32 master weights).</summary>
    public TrainingPrecision Precision => Options.Precision;

    /// <summary>fp16: the current loss scale (null without loss scaling); <see cref="Loss"/> itself is never scaled.</summary>
    public double? LossScale => Mixed?.Scaler?.Scale;

    /// <summary>The low-precision working copy (null in fp32).</summary>
    internal MixedPrecision? Mixed { get; init; }

    /// <summary>State plug-ins share with each other during the run.</summary>
    public IDictionary<string, object> Items { get; } = new Dictionary<string, object>(StringComparer.Ordinal);
}
