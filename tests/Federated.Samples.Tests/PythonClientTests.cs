using System.Net;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Federated.Samples.Tests;

/// <summary>
/// Sample (e): samples/PythonClient/client.py, a Python agent using grpcio and protos/ only, against a real coordinator
/// hosted here (keys mode: the agent must prove its Ed25519 key and present a one-time enrolment token).
/// </summary>
public sealed class PythonClientTests : IAsyncDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-python-sample-").FullName;

    [PythonFact]
    public async Task PythonClient_AgainstALiveCoordinator_EnrolsTrainsAndTheRoundCompletes()
    {
        await using var app = await StartCoordinatorAsync();
        var (token, _) = app.Services.GetRequiredService<AgentKeyStore>().IssueToken(1, TimeSpan.FromMinutes(10), "python-agent");
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();

        var (exitCode, output) = await SampleProcess.RunAsync(
            PythonFactAttribute.Python,
            [Path.Combine(SampleProcess.RepositoryRoot, "samples", "PythonClient", "client.py"), "--address", new Uri(address).Authority, "--token", token, "--agent-id", "python-agent"],
            TimeSpan.FromMinutes(3));

        Assert.True(exitCode == 0, output);
        Assert.Contains("round 1: sent an update", output, StringComparison.Ordinal);
        var run = app.Services.GetRequiredService<RunStatus>();
        Assert.True(run.Finished, $"The run did not finish: {run.StopReason}\n{output}");
        Assert.Equal(1, run.CompletedRounds);
        var rounds = File.ReadAllLines(Path.Combine(_state, "rounds.csv"));
        var row = rounds[0].Split(',').Zip(rounds[1].Split(',')).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
        Assert.Equal("1", row["results"]);
        Assert.Equal("true", row["ok"]);
        var agent = app.Services.GetRequiredService<AgentRegistry>().Find("python-agent");
        Assert.NotNull(agent?.PublicKey);
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_state, recursive: true);
        return ValueTask.CompletedTask;
    }

    private async Task<WebApplication> StartCoordinatorAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing", ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Coordinator:StateDirectory"] = _state,
            ["Coordinator:Model"] = "mlp",
            ["Coordinator:InputShape:0"] = "1",
            ["Coordinator:InputShape:1"] = "4",
            ["Coordinator:InputShape:2"] = "4",
            ["Coordinator:NumClasses"] = "2",
            ["Coordinator:Rounds"] = "1",
            ["Coordinator:MinAvailable"] = "1",
            ["Coordinator:MinFit"] = "1",
            ["Coordinator:RoundDeadlineSeconds"] = "120",
            ["Coordinator:Evaluation:Source"] = "synthetic",
            ["Coordinator:Evaluation:SyntheticCount"] = "32",
            ["Coordinator:Evaluation:Normalization"] = "none",
            ["Coordinator:Evaluation:Threads"] = "1",
            ["Coordinator:HeartbeatSeconds"] = "0.5",
            ["Coordinator:ChunkBytes"] = "65536",
            ["Coordinator:Prometheus:Enabled"] = "false",
            ["Coordinator:Security:Mode"] = "keys",
            ["Coordinator:Security:Plaintext"] = "loopback",
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddFederatedCoordinator(builder.Configuration);
        var app = builder.Build();
        app.MapFederatedCoordinator();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return app;
    }
}

/// <summary>
/// A test that needs Debian's Python with grpcio, grpc-tools, protobuf and PyNaCl (<c>bash scripts/setup.sh --python</c>
/// installs them). <c>FEDERATED_PYTHON</c> names another interpreter; <c>FEDERATED_SKIP_PYTHON_TESTS=1</c> skips the
/// test on a machine without them (CI installs them, so it never skips there).
/// </summary>
public sealed class PythonFactAttribute : FactAttribute
{
    /// <summary>The interpreter the test runs.</summary>
    public static string Python => Environment.GetEnvironmentVariable("FEDERATED_PYTHON") is { Length: > 0 } python ? python : "/usr/bin/python3";

    public PythonFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("FEDERATED_SKIP_PYTHON_TESTS") == "1")
        {
            Skip = "FEDERATED_SKIP_PYTHON_TESTS=1: the Python client sample is skipped.";
        }
    }
}
