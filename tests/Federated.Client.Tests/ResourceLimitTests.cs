using System.Diagnostics;
using Federated.Client.Agent;
using Federated.Client.Hosting;
using Federated.Client.Training;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

/// <summary>Threads, the duty cycle, the pause file, the training window, and the device choice of <c>auto</c>.</summary>
public sealed class ResourceLimitTests
{
    [Fact]
    public void Threads_SetAtStart_AreWhatLibtorchUses()
    {
        var before = torch.get_num_threads();
        try
        {
            var compute = TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Cpu, Threads = 1 });

            Assert.Equal(1, torch.get_num_threads());
            Assert.Contains("(1 threads)", compute.Description, StringComparison.Ordinal);
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void DutyCycle_Half_RestsAsLongAsEachBatchWorked()
    {
        using var dir = new TempDirectory();
        var gate = new ResourceGate(new ClientResourceOptions { DutyCycle = 0.5 }, dir.Path, TimeProvider.System, NullLogger.Instance);
        var plugin = (ITrainingPlugin)gate;
        var wall = Stopwatch.StartNew();
        var busy = TimeSpan.Zero;

        for (var batch = 0; batch < 5; batch++)
        {
            plugin.BeforeBatch(null!);
            var work = Stopwatch.StartNew();
            while (work.ElapsedMilliseconds < 40)
            {
                // Busy work standing in for a mini-batch.
            }

            busy += work.Elapsed;
            plugin.AfterBatch(null!);
        }

        Assert.True(gate.Rested >= busy * 0.9, $"rested {gate.Rested} for {busy} of work");
        Assert.True(busy / wall.Elapsed <= 0.55, $"duty {busy / wall.Elapsed:P0}");
    }

    [Fact]
    public async Task PauseFile_HoldsTrainingUntilItIsRemoved()
    {
        using var dir = new TempDirectory();
        var reasons = new List<string?>();
        var gate = new ResourceGate(new ClientResourceOptions { PauseFile = "pause", PollSeconds = 0.02 }, dir.Path, TimeProvider.System, NullLogger.Instance, r => reasons.Add(r));
        File.WriteAllText(Path.Combine(dir.Path, "pause"), "");
        using var remover = Task.Delay(300).ContinueWith(_ => File.Delete(Path.Combine(dir.Path, "pause")), TaskScheduler.Default);
        var wall = Stopwatch.StartNew();

        ((ITrainingPlugin)gate).BeforeBatch(null!);

        Assert.True(wall.Elapsed >= TimeSpan.FromMilliseconds(250), $"returned after {wall.Elapsed}");
        Assert.True(gate.Paused >= TimeSpan.FromMilliseconds(250));
        Assert.StartsWith("pause file ", reasons[0], StringComparison.Ordinal);
        Assert.Null(reasons[^1]);
        await remover.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void PauseFile_CancelledTask_StopsWaiting()
    {
        using var dir = new TempDirectory();
        var gate = new ResourceGate(new ClientResourceOptions { PollSeconds = 10 }, dir.Path, TimeProvider.System, NullLogger.Instance);
        File.WriteAllText(gate.PauseFile, "");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        gate.Attach(cancel.Token);
        var wall = Stopwatch.StartNew();

        gate.WaitUntilAllowed();

        Assert.True(wall.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData("22:00", "06:00", "23:30", true)]
    [InlineData("22:00", "06:00", "05:59", true)]
    [InlineData("22:00", "06:00", "12:00", false)]
    [InlineData("09:00", "17:00", "08:59", false)]
    [InlineData("09:00", "17:00", "09:00", true)]
    [InlineData("09:00", "17:00", "17:00", false)]
    public void TrainingWindow_WrapsMidnight(string start, string end, string now, bool inside)
    {
        Assert.Equal(inside, ResourceGate.InWindow(TimeSpan.Parse(now, System.Globalization.CultureInfo.InvariantCulture), TimeSpan.Parse(start, System.Globalization.CultureInfo.InvariantCulture), TimeSpan.Parse(end, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData("25:00-06:00")]
    [InlineData("22:00")]
    [InlineData("08:00-08:00")]
    public void TrainingWindow_Invalid_IsAnErrorNamingTheKey(string window)
    {
        var options = new ClientOptions { Resources = { TrainingWindow = window } };

        Assert.Contains(options.GetErrors(), e => e.StartsWith("Client:Resources:TrainingWindow must be HH:mm-HH:mm", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.5)]
    public void DutyCycle_OutOfRange_IsAnErrorNamingTheKey(double duty)
    {
        var options = new ClientOptions { Resources = { DutyCycle = duty } };

        Assert.Contains(options.GetErrors(), e => e.StartsWith("Client:Resources:DutyCycle must be between 0.01 and 1", StringComparison.Ordinal));
    }

    [Fact]
    public void AutoDevice_OnThisCpuBuild_FallsBackToTheCpuAndSaysWhy()
    {
        var compute = TorchRuntime.Initialize(new ComputeOptions { Device = DeviceKind.Auto });

        var reason = AgentWorker.AutoFallbackReason(DeviceKind.Auto, compute.IsCuda, TorchRuntime.IsCudaBuild);

        Assert.False(compute.IsCuda);
        Assert.False(TorchRuntime.IsCudaBuild);
        Assert.Equal("this build uses the CPU libtorch; rebuild with -p:FederatedTorchBackend=cuda for a GPU", reason);
    }

    [Fact]
    public void AutoFallbackReason_CudaBuildWithoutDevice_NamesTheDriver_AndIsSilentOtherwise()
    {
        Assert.StartsWith("this CUDA build sees no CUDA device", AgentWorker.AutoFallbackReason(DeviceKind.Auto, onCuda: false, cudaBuild: true), StringComparison.Ordinal);
        Assert.Null(AgentWorker.AutoFallbackReason(DeviceKind.Auto, onCuda: true, cudaBuild: true));
        Assert.Null(AgentWorker.AutoFallbackReason(DeviceKind.Cpu, onCuda: false, cudaBuild: false));
    }
}
