namespace Federated.Learning.Training;

/// <summary>Optimisers the local trainer supports.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent, with optional (Nesterov) momentum.</summary>
    Sgd,

    /// <summary>Adam (L2 weight decay added to the gradient).</summary>
    Adam,

    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,
}

/// <summary>Hyper-parameters of one local training run.</summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the local data.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Samples per mini-batch.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>The optimiser.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>Learning rate.</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>SGD momentum (ignored by Adam/AdamW).</summary>
    public double Momentum { get; init; }

    /// <summary>Use Nesterov momentum with SGD.</summary>
    public bool Nesterov { get; init; }

    /// <summary>Weight decay (L2 for SGD and Adam, decoupled for AdamW).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Adam's β1.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Adam's β2.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Clip the global gradient L2 norm to this value before each step; 0 turns clipping off.</summary>
    public double GradientClipNorm { get; init; }

    /// <summary>Seeds the shuffling order (through the trainer's own generator: libtorch's global one is left alone, since agents may share a process).</summary>
    public long Seed { get; init; }

    /// <summary>Shuffle the local data every epoch.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop the last, partial batch of every epoch.</summary>
    public bool DropLast { get; init; }

    /// <summary>
    /// Iteration-based training: when positive, the trainer keeps cycling epochs (reshuffling each time) until it has taken
    /// exactly this many optimiser steps, and <see cref="Epochs"/> is ignored; 0 (the default) trains for
    /// <see cref="Epochs"/> passes. Continual-learning protocols count iterations per experience, not epochs.
    /// </summary>
    public long MaxSteps { get; init; }

    /// <summary>
    /// The number format of the forward and backward passes: <see cref="TrainingPrecision.Fp32"/> (default), or bf16 /
    /// fp16 on a low-precision working copy of the model with float32 master weights (the trainer then needs a model
    /// factory). The weights the optimiser updates, and so the update the agent uploads, stay float32.
    /// </summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Fp32;

    /// <summary>fp16 only: the loss scale the first step starts from.</summary>
    public double InitialLossScale { get; init; } = 65536;

    /// <summary>fp16 only: good steps in a row after which the loss scale doubles (an overflowing step halves it and is skipped).</summary>
    public int LossScaleGrowthInterval { get; init; } = 2000;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        Require(Epochs >= 1, nameof(Epochs), "must be at least 1");
        Require(MaxSteps >= 0, nameof(MaxSteps), "must be 0 (off) or positive");
        Require(BatchSize >= 1, nameof(BatchSize), "must be at least 1");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "must be positive and finite");
        Require(Momentum >= 0 && Momentum < 1, nameof(Momentum), "must be in [0, 1)");
        Require(!Nesterov || (Optimizer == OptimizerKind.Sgd && Momentum > 0), nameof(Nesterov), "needs SGD with momentum > 0");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), "must be non-negative");
        Require(Beta1 is >= 0 and < 1, nameof(Beta1), "must be in [0, 1)");
        Require(Beta2 is >= 0 and < 1, nameof(Beta2), "must be in [0, 1)");
        Require(GradientClipNorm >= 0 && double.IsFinite(GradientClipNorm), nameof(GradientClipNorm), "must be 0 (off) or positive");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), "must be sgd, adam or adamw");
        Require(Enum.IsDefined(Precision), nameof(Precision), "must be fp32, bf16 or fp16");
        Require(InitialLossScale >= 1 && double.IsFinite(InitialLossScale), nameof(InitialLossScale), "must be finite and at least 1");
        Require(LossScaleGrowthInterval >= 1, nameof(LossScaleGrowthInterval), "must be at least 1 step");
    }

    private static void Require(bool condition, string field, string rule)
    {
        if (!condition)
        {
            throw new ArgumentException($"Training option {field} {rule}.");
        }
    }
}
