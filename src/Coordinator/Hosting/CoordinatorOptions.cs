using System.ComponentModel.DataAnnotations;

namespace Federated.Coordinator.Hosting;

/// <summary>The coordinator's settings, bound from the <c>Coordinator</c> configuration section and validated on start.</summary>
public sealed class CoordinatorOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Coordinator";

    /// <summary>Where checkpoints and the round journal live.</summary>
    [Required(AllowEmptyStrings = false)]
    public string StateDirectory { get; set; } = "state/coordinator";

    /// <summary>Largest gRPC message the coordinator accepts, in bytes (models travel in chunks below this).</summary>
    [Range(64 * 1024, 256 * 1024 * 1024)]
    public int MaxReceiveMessageBytes { get; set; } = 4 * 1024 * 1024;
}
