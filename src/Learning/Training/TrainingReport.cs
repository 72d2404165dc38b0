namespace Federated.Learning.Training;

/// <summary>Metrics of one training epoch.</summary>
/// <param name="Epoch">Epoch number, from 1.</param>
/// <param name="Loss">Mean cross-entropy over the epoch's samples (without plug-in penalties).</param>
/// <param name="Accuracy">Fraction of training samples classified correctly during the epoch.</param>
/// <param name="Samples">Samples processed.</param>
/// <param name="Seconds">Wall time of the epoch's batches (plug-in epoch hooks excluded).</param>
public sealed record EpochMetrics(int Epoch, double Loss, double Accuracy, long Samples, double Seconds)
{
    /// <summary>Training throughput.</summary>
    public double SamplesPerSecond => Seconds > 0 ? Samples / Seconds : 0;
}

/// <summary>The outcome of <see cref="LocalTrainer.Train"/>.</summary>
/// <param name="Epochs">Per-epoch metrics.</param>
/// <param name="Steps">Optimiser steps taken (with fp16, including the <see cref="SkippedSteps"/> whose gradients overflowed).</param>
/// <param name="Cancelled">True when the run stopped early on cancellation.</param>
public sealed record TrainingReport(IReadOnlyList<EpochMetrics> Epochs, long Steps, bool Cancelled)
{
    /// <summary>Samples processed over all epochs (the weight FedAvg gives this client is usually the data size).</summary>
    public long Samples => Epochs.Sum(e => e.Samples);

    /// <summary>Loss of the last epoch.</summary>
    public double FinalLoss => Epochs.Count > 0 ? Epochs[^1].Loss : double.NaN;

    /// <summary>The precision the forward and backward passes ran in.</summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Fp32;

    /// <summary>fp16: steps skipped because their gradients held an inf or a NaN (the weights did not move).</summary>
    public long SkippedSteps { get; init; }

    /// <summary>fp16: the loss scale at the end of the run (null without loss scaling).</summary>
    public double? LossScale { get; init; }
}
