using Federated.Learning.Runtime;
using TorchSharp;

namespace Federated.Learning.Tests.Runtime;

public sealed class TorchRuntimeTests
{
    [Theory]
    [InlineData("auto", DeviceKind.Auto)]
    [InlineData("CPU", DeviceKind.Cpu)]
    [InlineData(" cuda ", DeviceKind.Cuda)]
    public void ParseDevice_KnownNames_Parse(string text, DeviceKind expected) =>
        Assert.Equal(expected, TorchRuntime.ParseDevice(text));

    [Fact]
    public void ParseDevice_Unknown_ThrowsWithChoices()
    {
        var error = Assert.Throws<ArgumentException>(() => TorchRuntime.ParseDevice("tpu"));

        Assert.Contains("auto, cpu or cuda", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Initialize_Cpu_ResolvesCpuAndTunesMalloc()
    {
        var context = TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Cpu });

        Assert.Equal(DeviceType.CPU, context.Device.type);
        Assert.Contains("malloc tuning", context.Description, StringComparison.Ordinal);
        if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is null && Environment.GetEnvironmentVariable("FEDERATED_MALLOC_TUNING") is null)
        {
            Assert.Contains("mmap_threshold=33554432", NativeRuntime.Status, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Initialize_CudaOnCpuOnlyMachine_ExplainsTheBuildSwitch()
    {
        if (torch.cuda.is_available())
        {
            return; // Only meaningful where no GPU is visible.
        }

        var error = Assert.Throws<InvalidOperationException>(() => TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Cuda }));

        Assert.Contains(TorchRuntime.IsCudaBuild ? "no CUDA device" : "FederatedTorchBackend=cuda", error.Message, StringComparison.Ordinal);
    }
}
