namespace Federated.Learning.Runtime;

/// <summary>Which device tensors live on: chosen once from options and passed down.</summary>
public enum DeviceKind
{
    /// <summary>CUDA when this build and machine have it, otherwise the CPU.</summary>
    Auto,

    /// <summary>The CPU backend.</summary>
    Cpu,

    /// <summary>A CUDA GPU; fails clearly when the build uses the CPU libtorch or no GPU is visible.</summary>
    Cuda,
}
