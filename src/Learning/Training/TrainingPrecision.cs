using static TorchSharp.torch;

namespace Federated.Learning.Training;

/// <summary>The number format the forward and backward passes run in; the weights the optimiser updates stay float32.</summary>
public enum TrainingPrecision
{
    /// <summary>Everything in float32 (the default).</summary>
    Fp32,

    /// <summary>bfloat16 forward and backward on a working copy of the model, float32 master weights; no loss scaling (bf16 has float32's range).</summary>
    Bf16,

    /// <summary>float16 forward and backward on a working copy, float32 master weights and a <see cref="DynamicLossScaler"/>.</summary>
    Fp16,
}

/// <summary>Names and element types of <see cref="TrainingPrecision"/>.</summary>
public static class TrainingPrecisions
{
    /// <summary>The names <see cref="Parse"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["fp32", "bf16", "fp16"];

    /// <summary>Parses <c>fp32</c> (also <c>float32</c>), <c>bf16</c> (<c>bfloat16</c>) or <c>fp16</c> (<c>float16</c>, <c>half</c>), case-insensitively.</summary>
    public static TrainingPrecision Parse(string? text) => TryParse(text, out var precision)
        ? precision
        : throw new ArgumentException($"Training precision must be fp32, bf16 or fp16, not '{text}'.", nameof(text));

    /// <summary>Like <see cref="Parse"/>, without throwing.</summary>
    public static bool TryParse(string? text, out TrainingPrecision precision)
    {
        TrainingPrecision? parsed = text?.Trim().ToLowerInvariant() switch
        {
            "fp32" or "float32" => TrainingPrecision.Fp32,
            "bf16" or "bfloat16" => TrainingPrecision.Bf16,
            "fp16" or "float16" or "half" => TrainingPrecision.Fp16,
            _ => null,
        };
        precision = parsed ?? TrainingPrecision.Fp32;
        return parsed is not null;
    }

    /// <summary>The configuration name: <c>fp32</c>, <c>bf16</c> or <c>fp16</c>.</summary>
    public static string Name(this TrainingPrecision precision) => precision switch
    {
        TrainingPrecision.Fp32 => "fp32",
        TrainingPrecision.Bf16 => "bf16",
        TrainingPrecision.Fp16 => "fp16",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown precision."),
    };

    /// <summary>The element type the working copy computes in.</summary>
    public static ScalarType ScalarType(this TrainingPrecision precision) => precision switch
    {
        TrainingPrecision.Fp32 => TorchSharp.torch.ScalarType.Float32,
        TrainingPrecision.Bf16 => TorchSharp.torch.ScalarType.BFloat16,
        TrainingPrecision.Fp16 => TorchSharp.torch.ScalarType.Float16,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown precision."),
    };
}
