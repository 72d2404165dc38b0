using System.ComponentModel.DataAnnotations;

namespace Federated.Client.Hosting;

/// <summary>The agent's settings, bound from the <c>Client</c> configuration section and validated on start.</summary>
public sealed class ClientOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Client";

    /// <summary>The coordinator's address, e.g. <c>http://localhost:5000</c>.</summary>
    [Required]
    public Uri? CoordinatorAddress { get; set; } = new("http://localhost:5000");

    /// <summary><c>auto</c>, <c>cpu</c> or <c>cuda</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Device { get; set; } = "auto";

    /// <summary>Where the agent keeps its state between rounds and restarts.</summary>
    [Required(AllowEmptyStrings = false)]
    public string StateDirectory { get; set; } = "state/client";

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (CoordinatorAddress is { } address && address.Scheme is not ("http" or "https"))
        {
            yield return new ValidationResult($"Client:CoordinatorAddress must be an http or https URL, not '{address}'.", [nameof(CoordinatorAddress)]);
        }

        if (Device is not null && Device.Trim().ToUpperInvariant() is not ("AUTO" or "CPU" or "CUDA" or "GPU"))
        {
            yield return new ValidationResult($"Client:Device must be auto, cpu or cuda, not '{Device}'.", [nameof(Device)]);
        }
    }
}
