using System.Net;
using System.Net.Sockets;
using Federated.Client.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>Real client agents (the shipped worker, in-process) surviving a coordinator restart.</summary>
public sealed class RestartTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("federated-restart-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private IHost StartAgent(string address, int index, LogSink logs)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing", DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Client:CoordinatorAddress"] = address,
            ["Client:AgentId"] = $"agent-{index}",
            ["Client:Device"] = "cpu",
            ["Client:Threads"] = "1",
            ["Client:StateDirectory"] = Path.Combine(_root, $"agent-{index}"),
            ["Client:ReconnectMinSeconds"] = "0.1",
            ["Client:ReconnectMaxSeconds"] = "0.5",
            ["Client:Data:Source"] = "synthetic",
            ["Client:Data:SyntheticCount"] = "128",
            ["Client:Data:SyntheticClasses"] = "4",
            ["Client:Data:Normalization"] = "none",
            ["Client:Data:Clients"] = "2",
            ["Client:Data:Index"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        builder.Logging.AddProvider(logs);
        builder.Services.AddFederatedClient(builder.Configuration);
        var host = builder.Build();
        host.Start();
        return host;
    }

    [Theory]
    [InlineData("sqlite")] // the default store
    [InlineData("file")]
    public async Task Restart_AgentsReconnect_RunResumesAtNextRoundWithTheSameGlobalModel(string store)
    {
        var port = FreePort();
        var state = Path.Combine(_root, "coordinator");
        var settings = TestCoordinator.Settings(state, rounds: 1);
        if (store == "file")
        {
            settings["Coordinator:Store"] = "file";
        }

        settings["Coordinator:InputShape:1"] = "28";
        settings["Coordinator:InputShape:2"] = "28";
        var agentLogs = new LogSink("agents");
        string checksumAfterRound1;
        string runId;
        var first = await TestCoordinator.StartAsync(settings, port);
        using var agent0 = StartAgent($"http://127.0.0.1:{port}", 0, agentLogs);
        using var agent1 = StartAgent($"http://127.0.0.1:{port}", 1, agentLogs);
        try
        {
            await TestCoordinator.WaitUntilAsync(() => first.Status.Finished, TimeSpan.FromSeconds(120), "round 1 with real agents");
            checksumAfterRound1 = first.Status.GlobalChecksum;
            runId = first.Status.RunId;
            Assert.Empty(first.Logs.Errors);
        }
        finally
        {
            await first.DisposeAsync();
        }

        settings["Coordinator:Rounds"] = "2";
        await using var second = await TestCoordinator.StartAsync(settings, port);
        await TestCoordinator.WaitUntilAsync(() => second.Status.Finished, TimeSpan.FromSeconds(120), "round 2 after the restart");

        Assert.True(second.Logs.Contains($"resumed after round 1 (global {checksumAfterRound1})"), string.Join("\n", second.Logs.Entries.Select(e => e.Message)));
        Assert.Equal(runId, second.Status.RunId);
        Assert.Equal(2, second.Status.CompletedRounds);
        Assert.NotEqual(checksumAfterRound1, second.Status.GlobalChecksum);
        var rows = File.ReadAllLines(Path.Combine(state, "rounds.csv"));
        Assert.Equal(3, rows.Length); // header, round 1, round 2
        Assert.StartsWith("2,", rows[2], StringComparison.Ordinal);
        Assert.Equal(store == "sqlite", File.Exists(Path.Combine(state, "coordinator.db")));
        Assert.Empty(second.Logs.Errors);
        await agent0.StopAsync();
        await agent1.StopAsync();
    }

    [Fact]
    public async Task Restart_PrivateRunWithAgentClipping_EpsilonContinuesFromTheSavedLedger()
    {
        var port = FreePort();
        var state = Path.Combine(_root, "coordinator");
        var settings = TestCoordinator.Settings(state, rounds: 1);
        settings["Coordinator:InputShape:1"] = "28";
        settings["Coordinator:InputShape:2"] = "28";
        settings["Coordinator:Privacy:Enabled"] = "true";
        settings["Coordinator:Privacy:SampleRate"] = "1";
        settings["Coordinator:Privacy:NoiseMultiplier"] = "1.5";
        settings["Coordinator:Privacy:ClipBound"] = "0.001"; // far below a real update's norm: every agent must clip
        settings["Coordinator:Privacy:ClipOnAgents"] = "true";
        settings["Coordinator:Privacy:Seed"] = "restart";
        var agentLogs = new LogSink("agents");
        var first = await TestCoordinator.StartAsync(settings, port);
        using var agent0 = StartAgent($"http://127.0.0.1:{port}", 0, agentLogs);
        using var agent1 = StartAgent($"http://127.0.0.1:{port}", 1, agentLogs);
        string epsilonBefore;
        try
        {
            await TestCoordinator.WaitUntilAsync(() => first.Status.Finished, TimeSpan.FromSeconds(120), "round 1 with real agents");
            Assert.Empty(first.Logs.Errors);
            var before = File.ReadAllLines(Path.Combine(state, "rounds.csv"));
            epsilonBefore = before[1].Split(',')[Array.IndexOf(before[0].Split(','), "epsilon")];
        }
        finally
        {
            await first.DisposeAsync();
        }

        settings["Coordinator:Rounds"] = "2";
        await using var second = await TestCoordinator.StartAsync(settings, port);
        await TestCoordinator.WaitUntilAsync(() => second.Status.Finished, TimeSpan.FromSeconds(120), "round 2 after the restart");

        var lines = File.ReadAllLines(Path.Combine(state, "rounds.csv"));
        var header = lines[0].Split(',');
        string Cell(int round, string column) => lines[round].Split(',')[Array.IndexOf(header, column)];
        double Epsilon(int round) => double.Parse(Cell(round, "epsilon"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(3, lines.Length);
        Assert.True(second.Logs.Contains("1 rounds charged so far"), string.Join("\n", second.Logs.Entries.Select(e => e.Message)));

        // ε after the restart is ε before it: the restored ledger gives the same figure, and the database's rows agree.
        var restored = double.Parse(epsilonBefore, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(second.Logs.Contains(FormattableString.Invariant($"1 rounds charged so far, ε = {restored:G6}")), string.Join("\n", second.Logs.Entries.Select(e => e.Message)));
        Assert.Equal(epsilonBefore, Cell(1, "epsilon"));
        using (var database = new Coordinator.State.SqliteRoundStateStore(state, Path.Combine(state, "coordinator.db")))
        {
            var rows = database.Rounds(second.Status.RunId);
            Assert.Equal([1, 2], rows.Select(r => r.Round));
            Assert.Equal(Epsilon(1), rows[0].Epsilon!.Value, 6);
            Assert.Equal(Epsilon(2), rows[1].Epsilon!.Value, 6);
        }

        Assert.Equal(Learning.Privacy.RdpAccountant.Epsilon(1, 1.5, 1, 1e-5).Epsilon, Epsilon(1), 6);
        Assert.Equal(Learning.Privacy.RdpAccountant.Epsilon(1, 1.5, 2, 1e-5).Epsilon, Epsilon(2), 6);
        foreach (var round in new[] { 1, 2 })
        {
            // Both updates arrived (an unclipped one would have been rejected) and both agents said they clipped.
            Assert.Equal("2", Cell(round, "results"));
            Assert.Equal("1", Cell(round, "agg_dp_clipped_fraction"));
        }

        Assert.Empty(second.Logs.Errors);
        await agent0.StopAsync();
        await agent1.StopAsync();
    }
}
