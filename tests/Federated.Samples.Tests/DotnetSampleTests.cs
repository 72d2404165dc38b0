namespace Federated.Samples.Tests;

/// <summary>
/// Each .NET sample, built with the solution, runs as its own process on a tiny setting (a few rounds, two agents on
/// loopback) and must exit 0 after doing its job. One class, so they run one after another.
/// </summary>
public sealed class DotnetSampleTests
{
    [Fact]
    public async Task CustomModel_TwoAgentsTrainTheirOwnModelOnTheirOwnData_TrainLossFalls()
    {
        var (exitCode, output) = await SampleProcess.RunSampleAsync("CustomModel", "3");

        Assert.True(exitCode == 0, output);
        Assert.Contains("stripes-net: 3 rounds with 2 agents", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CustomStrategy_CoordinatorAggregatesWithTheRegisteredStrategy_ItsMetricsAreRecorded()
    {
        var (exitCode, output) = await SampleProcess.RunSampleAsync("CustomStrategy", "2");

        Assert.True(exitCode == 0, output);
        Assert.Contains("round 1: clipped-fedavg aggregated 2 updates", output, StringComparison.Ordinal);
        Assert.Contains("round 2: clipped-fedavg aggregated 2 updates", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientMiddleware_EveryUpdate_CarriesTheMiddlewaresMetricToTheCoordinator()
    {
        var (exitCode, output) = await SampleProcess.RunSampleAsync("ClientMiddleware", "2");

        Assert.True(exitCode == 0, output);
        Assert.Contains("4 updates reached the coordinator, 4 carried update_l2_norm", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WebAppHost_Smoke_ServesTheAppsOwnEndpointsAndTheCoordinatorsGrpc()
    {
        var (exitCode, output) = await SampleProcess.RunSampleAsync("WebAppHost", "--smoke");

        Assert.True(exitCode == 0, output);
        Assert.Contains("web: Hello from the existing web app.", output, StringComparison.Ordinal);
        Assert.Contains("grpc: coordinator protocol 1", output, StringComparison.Ordinal);
    }
}
