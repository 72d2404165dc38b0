using System.Net;
using System.Net.Sockets;
using Federated.Coordinator.Agents;
using Federated.Coordinator.State;
using Federated.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>What survives a coordinator restart through the store, and the metrics a round leaves.</summary>
[Collection(ProcessWideMetrics.Name)]
public sealed class PersistenceTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-persistence-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("file")]
    public async Task Restart_EnrolledAgent_IsKnownAgainAndItsTokenStillOpensASession(string store)
    {
        var port = FreePort();
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:Store"] = store;
        settings["Coordinator:MinAvailable"] = "3"; // no round starts: only enrolment matters here
        ScriptedAgent agent;
        await using (var first = await TestCoordinator.StartAsync(settings, port))
        {
            agent = await ScriptedAgent.EnrollAsync(first.Address, "device-7", examples: 321);
        }

        await using (agent)
        {
            await using var second = await TestCoordinator.StartAsync(settings, port);
            var registry = second.Services.GetRequiredService<AgentRegistry>();
            Assert.Equal(["device-7"], registry.KnownIds());
            Assert.Equal(321, registry.Find("device-7")!.Capabilities.NumExamples);

            // The agent's channel may still hold its HTTP/2 connection to the first process, which closed it: one call lets
            // the channel find that out (it may fail), as a real agent's retry would.
            try
            {
                await agent.Client.GetStatusAsync(new StatusRequest { ProtocolVersion = Protocol.ProtocolVersion.Current }, deadline: DateTime.UtcNow.AddSeconds(10));
            }
            catch (RpcException)
            {
            }

            // The token issued by the first process authenticates with the second: no re-enrolment needed.
            await agent.ConnectAsync();
            await TestCoordinator.WaitUntilAsync(() => registry.IsConnected("device-7"), TimeSpan.FromSeconds(20), "the session with the old token");
            Assert.Empty(second.Logs.Errors);
        }

        Assert.Equal(store == "sqlite", File.Exists(Path.Combine(_state, "coordinator.db")));
    }

    [Fact]
    public async Task Metrics_AfterARound_PrometheusEndpointServesTheRoundSeries()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:MinFit"] = "2";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();
        foreach (var agent in new[] { a, b })
        {
            var task = (await agent.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var transfer = await agent.UploadUpdateAsync(task, g => Enumerable.Repeat(0.01f, g.Length).ToArray());
            await agent.SendResultAsync(new TaskResult { TaskId = task.TaskId, Round = task.Round, Ok = true, UploadTransferId = transfer, NumExamples = 100, LocalSteps = 1 });
        }

        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        // The gRPC endpoint speaks HTTP/2 only (cleartext, prior knowledge).
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{coordinator.Address}/metrics") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await http.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(30));
        var text = await response.Content.ReadAsStringAsync();

        // A series line: name{otel_scope_name="Federated.Coordinator",labels...} value.
        void Series(string name, string label = "", string? value = null) => Assert.True(
            text.Split('\n').Any(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal) && (value is null || l.EndsWith(" " + value, StringComparison.Ordinal))),
            $"{name} {label} {value} is not in:\n{text}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Series("federated_rounds_completed_total", "run=\"configured\"", "1");
        Series("federated_round_participants_sum", value: "2");
        Series("federated_round_participants_bucket", "le=\"2\"", "1");
        Series("federated_transfer_bytes_total", "direction=\"up\"");
        Series("federated_transfer_bytes_total", "direction=\"down\"");
        Series("federated_aggregation_duration_seconds_count", value: "1");
        Series("federated_round_last_completed", value: "1");
        Assert.DoesNotContain("federated_rounds_failed_total", text, StringComparison.Ordinal);
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task Metrics_Disabled_PathIsNotServed()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:Prometheus:Enabled"] = "false";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{coordinator.Address}/metrics") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await http.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}

/// <summary>
/// The coordinator's OpenTelemetry exporter listens to every <c>Federated.Coordinator</c> meter in the process, so a
/// test that reads exact series must not share the process with other coordinators running rounds at the same time.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMetrics
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Process-wide metrics";
}
