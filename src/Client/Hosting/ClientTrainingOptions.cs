using System.Globalization;
using Federated.Learning.Training;

namespace Federated.Client.Hosting;

/// <summary>
/// The <c>Client:Training</c> section: how this device runs the training the coordinator configures. The coordinator
/// decides what is trained (epochs, optimiser, learning rate); the agent decides the number format it computes in.
/// </summary>
public sealed class ClientTrainingOptions
{
    /// <summary>
    /// <c>fp32</c> (default), <c>bf16</c> or <c>fp16</c>: with bf16/fp16 the forward and backward passes run on a
    /// low-precision working copy of the model while the optimiser updates float32 master weights, so the update the
    /// agent uploads is float32 either way. fp16 adds a dynamic loss scale. Meant for GPUs; on most CPUs bf16 and fp16
    /// are slower than fp32.
    /// </summary>
    public string Precision { get; set; } = "fp32";

    /// <summary>fp16: the loss scale the first step of every run starts from.</summary>
    public double InitialLossScale { get; set; } = 65536;

    /// <summary>fp16: good steps in a row after which the loss scale doubles (an overflow halves it and skips the step).</summary>
    public int LossScaleGrowthInterval { get; set; } = 2000;

    /// <summary>The parsed <see cref="Precision"/> (valid after validation).</summary>
    public TrainingPrecision GetPrecision() => TrainingPrecisions.Parse(Precision);

    /// <summary>Applies these settings to one run's options.</summary>
    public TrainingOptions Apply(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options with { Precision = GetPrecision(), InitialLossScale = InitialLossScale, LossScaleGrowthInterval = LossScaleGrowthInterval };
    }

    internal void AddErrors(List<string> errors)
    {
        if (!TrainingPrecisions.TryParse(Precision, out _))
        {
            errors.Add($"Client:Training:Precision must be fp32, bf16 or fp16, not '{Precision}'.");
        }

        if (!(InitialLossScale >= 1) || !double.IsFinite(InitialLossScale))
        {
            errors.Add($"Client:Training:InitialLossScale must be finite and at least 1, not {InitialLossScale.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (LossScaleGrowthInterval is < 1 or > 1_000_000)
        {
            errors.Add($"Client:Training:LossScaleGrowthInterval must be between 1 and 1000000 steps, not {LossScaleGrowthInterval}.");
        }
    }
}
