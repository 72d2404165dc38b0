using Federated.Simulations.Load;

namespace Federated.Simulations.Tests;

/// <summary>The load harness against the shipped coordinator process: every heartbeat is acknowledged, nothing fails.</summary>
public sealed class LoadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Load_SmallFederation_EveryHeartbeatAcknowledged_UploadsComplete_NoErrors()
    {
        // CI's size; `federated-sim load` holds 1,000 streams for 60 s (docs/results/async-and-faults.md).
        var settings = new LoadSettings(Agents: 50, Seconds: 4, HeartbeatSeconds: 0.5, UploadBytes: 2048, UploadSeconds: 1, Seed: 3, OutputDirectory: Path.Combine(_dir, "load"));

        var report = await new LoadRunner(settings, TextWriter.Null).RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(0, report.Errors);
        Assert.True(report.HeartbeatsSent >= 50 * 4, $"{report.HeartbeatsSent} heartbeats measured");
        Assert.Equal(report.HeartbeatsSent, report.HeartbeatsAcknowledged);
        Assert.True(report.Uploads >= 50, $"{report.Uploads} uploads measured");
        Assert.True(report.HeartbeatP50Ms > 0 && report.HeartbeatP50Ms <= report.HeartbeatP99Ms);
        Assert.True(report.CoordinatorRssMb > 0 && report.CoordinatorCpuSeconds > 0);
        Assert.True(File.Exists(Path.Combine(settings.OutputDirectory, "load.md")));
    }
}
