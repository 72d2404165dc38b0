namespace Federated.Learning.Training;

/// <summary>
/// A plug-in on the local training loop. The loop fires the hooks in this fixed order:
/// <code>
/// BeforeTraining
///   BeforeEpoch
///     BeforeBatch → (forward) → AfterForward → (backward) → AfterBackward → (clip, step) → AfterStep → AfterBatch
///   AfterEpoch
/// AfterTraining
/// </code>
/// Plug-ins run in registration order at every hook. EWC and FedProx add a penalty to
/// <see cref="TrainingContext.Loss"/> in <see cref="AfterForward"/>; replay rewrites the batch in
/// <see cref="BeforeBatch"/>; DP clipping edits gradients in <see cref="AfterBackward"/>. Tensors a hook creates
/// inside a batch belong to that batch's dispose scope.
/// </summary>
public interface ITrainingPlugin
{
    /// <summary>Once, before the first epoch (the optimiser exists; the model is in training mode).</summary>
    void BeforeTraining(TrainingContext context) { }

    /// <summary>At the start of every epoch.</summary>
    void BeforeEpoch(TrainingContext context) { }

    /// <summary>Before the forward pass; may replace <see cref="TrainingContext.Inputs"/> and <see cref="TrainingContext.Targets"/>.</summary>
    void BeforeBatch(TrainingContext context) { }

    /// <summary>After the loss is computed; may add terms to <see cref="TrainingContext.Loss"/>.</summary>
    void AfterForward(TrainingContext context) { }

    /// <summary>
    /// After <c>backward()</c>, before clipping and the optimiser step; may edit gradients (the float32 master gradients,
    /// already unscaled, in bf16 and fp16 training). Not fired for an fp16 step skipped for overflowing gradients.
    /// </summary>
    void AfterBackward(TrainingContext context) { }

    /// <summary>After the optimiser step.</summary>
    void AfterStep(TrainingContext context) { }

    /// <summary>At the end of every batch, before its tensors are released.</summary>
    void AfterBatch(TrainingContext context) { }

    /// <summary>At the end of every epoch, with that epoch's metrics in <see cref="TrainingContext.LastEpoch"/>.</summary>
    void AfterEpoch(TrainingContext context) { }

    /// <summary>Once, after the last epoch (or after cancellation).</summary>
    void AfterTraining(TrainingContext context) { }
}
