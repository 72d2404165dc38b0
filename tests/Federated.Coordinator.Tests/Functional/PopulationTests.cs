using Federated.Coordinator.Agents;
using Federated.Protocol.V1;
using Microsoft.Extensions.DependencyInjection;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>Sampling every enrolled agent (virtual clients, devices that check in): held tasks, the roster, the activator.</summary>
public sealed class PopulationTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-population-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public async Task Enrolled_OfflineAgentsAreSampled_HeldTaskDeliveredOnConnect_AbsentOneCountedAtDeadline()
    {
        var roster = Path.Combine(_state, "roster.txt");
        File.WriteAllLines(roster, ["# three devices", "a", "b", "c  # never comes"]);
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:Population"] = "enrolled";
        settings["Coordinator:RosterFile"] = roster;
        settings["Coordinator:MinAvailable"] = "3";
        settings["Coordinator:MinFit"] = "1";

        // Long enough for a and b to enrol, connect and answer on a machine under load (4 s was not, at load average 30);
        // c's absence is counted when it passes.
        settings["Coordinator:RoundDeadlineSeconds"] = "12";
        var activator = new RecordingActivator();
        await using var coordinator = await TestCoordinator.StartAsync(settings, services: s => s.AddSingleton<IAgentActivator>(activator));

        // Nobody is connected, yet the roster makes three agents available: the round starts and asks for them.
        await TestCoordinator.WaitUntilAsync(() => activator.Activated.Count == 3, TimeSpan.FromSeconds(30), "the round to activate a, b and c");
        Assert.Equal(["a", "b", "c"], activator.Activated.Select(x => x.AgentId).Order(StringComparer.Ordinal));
        Assert.All(activator.Activated, x => Assert.Equal(1, x.Round));

        // a and b check in after the round started: their held tasks arrive first thing on the new session.
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();
        var taskA = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var taskB = (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        Assert.Equal(1, taskA.Round);
        Assert.Equal("r1-b", taskB.TaskId);
        foreach (var (agent, task) in new[] { (a, taskA), (b, taskB) })
        {
            var transfer = await agent.UploadUpdateAsync(task, g => Enumerable.Repeat(0.01f, g.Length).ToArray());
            await agent.SendResultAsync(new TaskResult { TaskId = task.TaskId, Round = 1, Ok = true, UploadTransferId = transfer, NumExamples = 10 });
        }

        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");
        var lines = File.ReadAllLines(Path.Combine(_state, "rounds.csv"));
        var row = lines[0].Split(',').Zip(lines[1].Split(','), (h, v) => $"{h}={v}").ToArray();
        Assert.Contains("selected=3", row);
        Assert.Contains("results=2", row);
        Assert.Contains("failures=1", row);
        Assert.True(coordinator.Logs.Contains("Roster"), "the roster load is logged");
        await TestCoordinator.WaitUntilAsync(() => activator.Released.Count == 3, TimeSpan.FromSeconds(10), "every sampled agent released");
        Assert.Equal(["a", "b", "c"], activator.Released.Order(StringComparer.Ordinal));
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task Enrolled_AgentSampledAgainWhileItsReleasedSessionCloses_GetsTheTaskOnItsNextSession()
    {
        // The simulator's pool retires an agent once the round releases it; if the next round samples it before its
        // session has closed, the task must wait for its next session (and the pool be asked for it), not go to the
        // session that is closing, where it would be lost.
        var roster = Path.Combine(_state, "roster.txt");
        File.WriteAllLines(roster, ["a"]);
        var settings = TestCoordinator.Settings(_state, rounds: 2);
        settings["Coordinator:Population"] = "enrolled";
        settings["Coordinator:RosterFile"] = roster;
        settings["Coordinator:MinAvailable"] = "1";
        settings["Coordinator:MinFit"] = "1";
        var activator = new RecordingActivator { Retires = true };
        await using var coordinator = await TestCoordinator.StartAsync(settings, services: s => s.AddSingleton<IAgentActivator>(activator));
        await using var first = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await first.ConnectAsync();
        var task1 = (await first.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var transfer = await first.UploadUpdateAsync(task1, g => Enumerable.Repeat(0.01f, g.Length).ToArray());
        await first.SendResultAsync(new TaskResult { TaskId = task1.TaskId, Round = 1, Ok = true, UploadTransferId = transfer, NumExamples = 10 });
        await TestCoordinator.WaitUntilAsync(() => activator.Activated.Any(x => x.Round == 2), TimeSpan.FromSeconds(30), "round 2 to ask the pool for a again");

        // Still on the released session: round 2's task does not come there.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.NextAsync(CoordinatorMessage.KindOneofCase.Train, TimeSpan.FromSeconds(1)));
        await using var next = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await next.ConnectAsync();
        var task2 = (await next.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        Assert.Equal(2, task2.Round);
        Assert.Contains((2, "a"), activator.Activated); // round 1 asks for it too unless it had connected before round 1 began
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task Connected_Default_DoesNotSampleRosterAgentsThatAreOffline()
    {
        var roster = Path.Combine(_state, "roster.txt");
        File.WriteAllLines(roster, ["a", "b", "c"]);
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:RosterFile"] = roster;
        settings["Coordinator:MinAvailable"] = "2";
        var activator = new RecordingActivator();
        await using var coordinator = await TestCoordinator.StartAsync(settings, services: s => s.AddSingleton<IAgentActivator>(activator));
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();

        var task = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;

        Assert.Equal(1, task.Round);
        Assert.Empty(activator.Activated);
    }
}
