using TorchSharp;

namespace Federated.Learning.Runtime;

/// <summary>Options every process that trains passes to <see cref="TorchRuntime.Initialize"/>.</summary>
public sealed class ComputeOptions
{
    /// <summary><c>auto</c>, <c>cpu</c> or <c>cuda</c>.</summary>
    public DeviceKind Device { get; set; } = DeviceKind.Auto;

    /// <summary>CUDA device ordinal when <see cref="Device"/> resolves to CUDA.</summary>
    public int CudaIndex { get; set; }

    /// <summary>Intra-op threads for libtorch; 0 keeps libtorch's default (one per core).</summary>
    public int Threads { get; set; }
}

/// <summary>The device and settings a process resolved at start-up.</summary>
/// <param name="Device">Where tensors live.</param>
/// <param name="Description">A line for start-up logs.</param>
public sealed record ComputeContext(torch.Device Device, string Description)
{
    /// <summary>The CPU context (used by tests and pure tools).</summary>
    public static ComputeContext Cpu { get; } = new(torch.CPU, "cpu");

    /// <summary>True when tensors live on a GPU.</summary>
    public bool IsCuda => Device.type == DeviceType.CUDA;
}

/// <summary>Start-up of the native side: allocator tuning, threads and the device, done once per process.</summary>
public static class TorchRuntime
{
    /// <summary>Parses <c>auto|cpu|cuda</c> (case-insensitive) with a clear error otherwise.</summary>
    public static DeviceKind ParseDevice(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToUpperInvariant() switch
        {
            "AUTO" => DeviceKind.Auto,
            "CPU" => DeviceKind.Cpu,
            "CUDA" or "GPU" => DeviceKind.Cuda,
            _ => throw new ArgumentException($"Unknown device '{value}': use auto, cpu or cuda.", nameof(value)),
        };
    }

    /// <summary>True when this build was compiled with <c>-p:FederatedTorchBackend=cuda</c>.</summary>
    public static bool IsCudaBuild =>
#if FEDERATED_CUDA
        true;
#else
        false;
#endif

    /// <summary>Tunes the allocator, sets threads and resolves the device.</summary>
    /// <exception cref="InvalidOperationException">CUDA was asked for but is not available.</exception>
    public static ComputeContext Initialize(ComputeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var malloc = NativeRuntime.Initialize();
        if (options.Threads < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be 0 (libtorch default) or positive.");
        }

        if (options.Threads > 0)
        {
            torch.set_num_threads(options.Threads);
        }

        var cudaAvailable = torch.cuda.is_available();
        var device = options.Device switch
        {
            DeviceKind.Cpu => torch.CPU,
            DeviceKind.Auto => cudaAvailable ? torch.CUDA : torch.CPU,
            DeviceKind.Cuda when cudaAvailable => torch.CUDA,
            DeviceKind.Cuda => throw new InvalidOperationException(IsCudaBuild
                ? "Device 'cuda' was requested but libtorch sees no CUDA device: check the driver and CUDA_VISIBLE_DEVICES, or use --device cpu."
                : "Device 'cuda' was requested but this build uses the CPU libtorch: rebuild with -p:FederatedTorchBackend=cuda (see README, 'GPU builds') or use --device cpu."),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Device, "Unknown device kind."),
        };

        if (device.type == DeviceType.CUDA && options.CudaIndex > 0)
        {
            device = torch.device(DeviceType.CUDA, options.CudaIndex);
        }

        var description = device.type == DeviceType.CUDA
            ? $"device cuda:{device.index} ({torch.cuda.device_count()} visible); {malloc}"
            : $"device cpu ({torch.get_num_threads()} threads); {malloc}";
        return new ComputeContext(device, description);
    }
}
