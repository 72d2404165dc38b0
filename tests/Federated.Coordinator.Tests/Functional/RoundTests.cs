using System.Diagnostics;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>Rounds over a real coordinator with scripted agents: k of n, deadlines, rejected updates.</summary>
public sealed class RoundTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-round-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static float[] SmallStep(float[] global) => Enumerable.Repeat(0.01f, global.Length).ToArray();

    private static Task AnswerAsync(ScriptedAgent agent, TrainTask task, string? fingerprint = null, Func<float[], float[]>? delta = null) =>
        agent.AnswerAsync(task, delta ?? SmallStep, fingerprint);

    private string[] MetricsRow(int round)
    {
        var lines = File.ReadAllLines(Path.Combine(_state, "rounds.csv"));
        var header = lines[0].Split(',');
        var row = lines[round].Split(',');
        return header.Zip(row, (h, v) => $"{h}={v}").ToArray();
    }

    [Fact]
    public async Task Round_AgentReconnectsWithinTheGrace_ItsResultCounts()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:MinAvailable"] = "2";
        settings["Coordinator:MinFit"] = "2";
        settings["Coordinator:RoundDeadlineSeconds"] = "60";
        settings["Coordinator:ReconnectGraceSeconds"] = "30";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();
        var taskA = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var taskB = (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;

        // The link of b drops while it trains; it comes back on a new session, gets its task again and delivers there.
        await b.DisconnectAsync();
        await TestCoordinator.WaitUntilAsync(() => coordinator.Logs.Contains("Agent b disconnected"), TimeSpan.FromSeconds(10), "b's disconnect");
        await using var back = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await back.ConnectAsync();
        var again = (await back.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        Assert.Equal(taskB.TaskId, again.TaskId); // the task is sent again: the agent may have lost it with the session
        Assert.Equal("true", again.Config["resent"]); // marked, so that an agent that already delivered it skips it
        await AnswerAsync(a, taskA);
        await AnswerAsync(back, taskB);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        var row = MetricsRow(1);
        Assert.Contains("results=2", row);
        Assert.Contains("failures=0", row);
        Assert.False(coordinator.Logs.Contains("disconnected during the round"));
    }

    [Fact]
    public async Task Round_AgentDisconnectsMidRound_CompletesWithKOfNWithoutWaiting()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:MinAvailable"] = "3";
        settings["Coordinator:MinFit"] = "2";
        settings["Coordinator:RoundDeadlineSeconds"] = "60";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await using var c = await ScriptedAgent.EnrollAsync(coordinator.Address, "c");
        await a.ConnectAsync();
        await b.ConnectAsync();
        await c.ConnectAsync();
        var taskA = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var taskB = (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        await c.NextAsync(CoordinatorMessage.KindOneofCase.Train);
        var clock = Stopwatch.StartNew();

        await c.DisconnectAsync();
        await AnswerAsync(a, taskA);
        await AnswerAsync(b, taskB);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the round waited {clock.Elapsed} for a dead agent");
        var row = MetricsRow(1);
        Assert.Contains("results=2", row);
        Assert.Contains("failures=1", row);
        Assert.Contains("ok=true", row);
        Assert.True(coordinator.Logs.Contains("disconnected during the round"));
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task Round_SlowAgent_EndsAtDeadlineWithWhatArrived()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:RoundDeadlineSeconds"] = "3";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var fast = await ScriptedAgent.EnrollAsync(coordinator.Address, "fast");
        await using var slow = await ScriptedAgent.EnrollAsync(coordinator.Address, "slow");
        await fast.ConnectAsync();
        await slow.ConnectAsync();
        var task = (await fast.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        await slow.NextAsync(CoordinatorMessage.KindOneofCase.Train);
        var clock = Stopwatch.StartNew();

        await AnswerAsync(fast, task);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        Assert.InRange(clock.Elapsed.TotalSeconds, 1.0, 15.0);
        var row = MetricsRow(1);
        Assert.Contains("results=1", row);
        Assert.Contains("failures=1", row);
        Assert.True(coordinator.Logs.Contains("reached its deadline"));
        var rejected = await slow.NextAsync(CoordinatorMessage.KindOneofCase.Rejected);
        Assert.Contains("closed", rejected.Rejected.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Result_WrongLayout_IsRejectedAndTheRoundGoesOn()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var bad = await ScriptedAgent.EnrollAsync(coordinator.Address, "bad");
        await using var good = await ScriptedAgent.EnrollAsync(coordinator.Address, "good");
        await bad.ConnectAsync();
        await good.ConnectAsync();
        var badTask = (await bad.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var goodTask = (await good.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;

        await AnswerAsync(bad, badTask, fingerprint: "0123456789abcdef0123456789abcdef");
        var rejected = await bad.NextAsync(CoordinatorMessage.KindOneofCase.Rejected);
        await AnswerAsync(good, goodTask);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        Assert.Contains("layout", rejected.Rejected.Reason, StringComparison.Ordinal);
        var row = MetricsRow(1);
        Assert.Contains("results=1", row);
        Assert.Contains("failures=1", row);
    }

    [Fact]
    public async Task Round_DeltasAreAveragedIntoTheGlobalModel()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();
        var taskA = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var taskB = (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var global = Protocol.Transfers.PayloadCodec.ReadDense(Protocol.Transfers.PayloadCodec.Parse(await a.DownloadAsync(taskA.Model), null), "model");

        await AnswerAsync(a, taskA);
        await AnswerAsync(b, taskB);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        // Both agents sent +0.01 everywhere with equal weight: the new global is the old one plus 0.01.
        var expected = global.Select(v => v + 0.01f).ToArray();
        Assert.Equal(Coordinator.Rounds.RoundRunner.Checksum(expected), coordinator.Status.GlobalChecksum);
    }

    [Fact]
    public async Task FederatedEvaluation_AgentsMetricsAreWeightedByExamples()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:FederatedEvaluation:Fraction"] = "1";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();
        await AnswerAsync(a, (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        await AnswerAsync(b, (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);

        var evalA = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Evaluate)).Evaluate;
        var evalB = (await b.NextAsync(CoordinatorMessage.KindOneofCase.Evaluate)).Evaluate;
        await a.DownloadAsync(evalA.Model);
        await a.SendResultAsync(new TaskResult { TaskId = evalA.TaskId, Round = 1, Ok = true, NumExamples = 100, Metrics = { ["eval_loss"] = 1.0, ["eval_accuracy"] = 0.5 } });
        await b.SendResultAsync(new TaskResult { TaskId = evalB.TaskId, Round = 1, Ok = true, NumExamples = 300, Metrics = { ["eval_loss"] = 0.2, ["eval_accuracy"] = 0.9 } });
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.CompletedRounds == 1, TimeSpan.FromSeconds(30), "round 1");

        // Weighted by examples: accuracy (100·0.5 + 300·0.9) / 400 = 0.8, loss (100·1.0 + 300·0.2) / 400 = 0.4.
        var row = MetricsRow(1);
        Assert.Contains("fed_eval_results=2", row);
        Assert.Contains("fed_eval_accuracy=0.80000", row);
        Assert.Contains("fed_eval_loss=0.40000", row);
    }

    [Fact]
    public async Task Round_RobustRulePreconditionFails_RoundFailsAndTheRunGoesOn()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 2);
        settings["Coordinator:StrategyOptions:aggregator"] = "krum:f=1"; // needs n ≥ 2f + 3 = 5 updates; two agents send two
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await a.ConnectAsync();
        await b.ConnectAsync();
        var first = (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        var initial = Protocol.Transfers.PayloadCodec.ReadDense(Protocol.Transfers.PayloadCodec.Parse(await a.DownloadAsync(first.Model), null), "model");

        await AnswerAsync(a, first);
        await AnswerAsync(b, (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        await AnswerAsync(a, (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        await AnswerAsync(b, (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.Finished, TimeSpan.FromSeconds(30), "the end of the run");

        Assert.Equal(2, coordinator.Status.CompletedRounds);
        Assert.Equal(Coordinator.Rounds.RoundRunner.Checksum(initial), coordinator.Status.GlobalChecksum);
        foreach (var round in new[] { 1, 2 })
        {
            var row = MetricsRow(round);
            Assert.Contains("results=2", row);
            Assert.Contains("ok=false", row);
        }

        Assert.True(coordinator.Logs.Contains("could not be aggregated"));
        Assert.True(coordinator.Logs.Contains("2f + 3"));
        Assert.False(coordinator.Logs.Contains("The run stopped"));
    }

    [Fact]
    public async Task Round_NormOutlier_IsLoggedAndCountedAndEarlierRowsSurviveTheNewColumn()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 2);
        settings["Coordinator:MinAvailable"] = "3";
        settings["Coordinator:StrategyOptions:aggregator"] = "median";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
        await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
        await using var c = await ScriptedAgent.EnrollAsync(coordinator.Address, "c");
        await a.ConnectAsync();
        await b.ConnectAsync();
        await c.ConnectAsync();
        static float[] Huge(float[] global) => Enumerable.Repeat(1000f, global.Length).ToArray();

        // Round 1: three equal updates. Round 2: c sends 10⁵ times the others' norm (the default max_norm_ratio is 10).
        foreach (var agent in new[] { a, b, c })
        {
            await AnswerAsync(agent, (await agent.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        }

        await AnswerAsync(a, (await a.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        await AnswerAsync(b, (await b.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train);
        await AnswerAsync(c, (await c.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train, delta: Huge);
        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.Finished, TimeSpan.FromSeconds(30), "the end of the run");

        Assert.Equal(3, File.ReadAllLines(Path.Combine(_state, "rounds.csv")).Length);
        var one = MetricsRow(1);
        Assert.Contains("rejected=0", one);
        Assert.Contains("agg_rejected=0", one);
        Assert.Contains("agg_rejected.norm_too_large=", one);
        var two = MetricsRow(2);
        Assert.Contains("rejected=1", two);
        Assert.Contains("agg_rejected=1", two);
        Assert.Contains("agg_rejected.norm_too_large=1", two);
        Assert.Contains("ok=true", two);
        Assert.True(coordinator.Logs.Contains("update of agent c left out by the aggregation"));
        Assert.Empty(coordinator.Logs.Errors);
    }
}
