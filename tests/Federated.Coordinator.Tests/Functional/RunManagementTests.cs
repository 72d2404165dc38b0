using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>
/// Runs on one coordinator through the admin API: two runs with different models and strategies over disjoint agents,
/// pause and resume, abort, history kept, refused requests, and resumption after a restart.
/// </summary>
public sealed class RunManagementTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-runs-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private Dictionary<string, string?> Settings()
    {
        var settings = TestCoordinator.Settings(_state);
        settings["Coordinator:Runs:RunOnStart"] = "false";
        return settings;
    }

    private static float[] Global(byte[] payload) => PayloadCodec.ReadDense(PayloadCodec.Parse(payload, null), "model");

    /// <summary>Uploads +0.01 everywhere for <paramref name="task"/> and reports it.</summary>
    private static Task AnswerAsync(ScriptedAgent agent, TrainTask task) => agent.AnswerAsync(task, g => Enumerable.Repeat(0.01f, g.Length).ToArray());

    private static async Task<RunInfo> WaitForAsync(Admin.AdminClient admin, string runId, Func<RunInfo, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var info = await admin.GetRunAsync(new RunRequest { RunId = runId });
            if (condition(info))
            {
                return info;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}; run {runId} is {info.State} at round {info.CurrentRound} ({info.CompletedRounds} completed).");
            }

            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task TwoRuns_DifferentModelsAndStrategies_AbortingOneLeavesTheOtherUntouched()
    {
        await using var coordinator = await TestCoordinator.StartAsync(Settings());
        using var channel = GrpcChannel.ForAddress(coordinator.Address);
        var admin = new Admin.AdminClient(channel);
        var agents = new Dictionary<string, ScriptedAgent>();
        foreach (var id in new[] { "a1", "a2", "b1", "b2" })
        {
            agents[id] = await ScriptedAgent.EnrollAsync(coordinator.Address, id, labels: new Dictionary<string, string> { ["team"] = id[..1] });
            await agents[id].ConnectAsync();
        }

        try
        {
            // A: the MLP with FedProx over a1, a2 by id; B: the wider MLP (another layout) with FedAvgM over the agents
            // labelled team=b.
            var runA = await admin.SubmitRunAsync(new SubmitRunRequest
            {
                Name = "A",
                AgentIds = { "a1", "a2" },
                Settings = { ["Model"] = "mlp", ["Strategy"] = "fedprox", ["StrategyOptions:mu"] = "0.01", ["Rounds"] = "5" },
            });
            var runB = await admin.SubmitRunAsync(new SubmitRunRequest
            {
                Name = "B",
                AgentLabels = { ["team"] = "b" },
                Settings = { ["Model"] = "mlp400", ["Strategy"] = "fedavgm", ["StrategyOptions:momentum"] = "0", ["Rounds"] = "3" },
            });
            Assert.Equal("running", runA.State);
            Assert.Equal(["a1", "a2"], runA.Agents);
            Assert.Equal(["b1", "b2"], runB.Agents);

            // Round 1 of both at once: each agent gets its own run's task (and model).
            var a1 = (await agents["a1"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var a2 = (await agents["a2"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var b1 = (await agents["b1"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var b2 = (await agents["b2"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            Assert.StartsWith(runA.RunId + "/", a1.TaskId, StringComparison.Ordinal);
            Assert.StartsWith(runB.RunId + "/", b1.TaskId, StringComparison.Ordinal);
            Assert.Equal("mlp", a1.ModelName);
            Assert.Equal("mlp400", b1.ModelName);
            Assert.Equal(0.01, double.Parse(a1.Config["proximal_mu"], System.Globalization.CultureInfo.InvariantCulture), 1e-12);
            Assert.False(b1.Config.ContainsKey("proximal_mu"));
            Assert.NotEqual(a1.LayoutFingerprint, b1.LayoutFingerprint);
            var bGlobal = Global(await agents["b1"].DownloadAsync(b1.Model));
            await AnswerAsync(agents["a1"], a1);
            await AnswerAsync(agents["a2"], a2);
            await AnswerAsync(agents["b1"], b1);
            await AnswerAsync(agents["b2"], b2);
            await WaitForAsync(admin, runA.RunId, r => r.CompletedRounds == 1, "A's round 1");
            await WaitForAsync(admin, runB.RunId, r => r.CompletedRounds == 1, "B's round 1");

            // A's round 2 is out; A is aborted in the middle of it.
            var a1Round2 = (await agents["a1"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            _ = (await agents["a2"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var aborted = await admin.AbortRunAsync(new AbortRunRequest { RunId = runA.RunId, Reason = "wrong learning rate" });
            Assert.Equal("aborted", aborted.State);
            Assert.Equal("wrong learning rate", aborted.Reason);
            Assert.Empty(aborted.Agents);

            // A result for the aborted run is refused, not taken by anyone.
            await agents["a1"].SendResultAsync(new TaskResult { TaskId = a1Round2.TaskId, Round = 2, Ok = true, UploadTransferId = "late", NumExamples = 100 });
            var refused = (await agents["a1"].NextAsync(CoordinatorMessage.KindOneofCase.Rejected)).Rejected;
            Assert.Equal(a1Round2.TaskId, refused.TaskId);

            // B goes on as if A had never been there: each round's model is the last one plus exactly its own agents' mean step.
            for (var round = 2; round <= 3; round++)
            {
                var t1 = (await agents["b1"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
                var t2 = (await agents["b2"].NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
                Assert.Equal(round, t1.Round);
                Assert.StartsWith(runB.RunId + "/", t2.TaskId, StringComparison.Ordinal);
                var global = Global(await agents["b1"].DownloadAsync(t1.Model));
                Assert.Equal(bGlobal.Length, global.Length);
                for (var i = 0; i < global.Length; i += 997)
                {
                    Assert.Equal(bGlobal[i] + 0.01f, global[i], 1e-5f);
                }

                bGlobal = global;
                await AnswerAsync(agents["b1"], t1);
                await AnswerAsync(agents["b2"], t2);
            }

            var finished = await WaitForAsync(admin, runB.RunId, r => r.State == "finished", "B to finish");
            Assert.Equal(3, finished.CompletedRounds);
            Assert.Equal(3, finished.Rounds.Count);
            Assert.All(finished.Rounds, r => Assert.Equal("2", r.Values["results"]));
            Assert.All(finished.Rounds, r => Assert.Equal("0", r.Values["failures"]));
            Assert.Equal("", finished.Reason);

            // A's history is kept: its one completed round, its record and its rounds.csv in its own folder.
            var a = await admin.GetRunAsync(new RunRequest { RunId = runA.RunId });
            Assert.Equal("aborted", a.State);
            Assert.Equal(1, a.CompletedRounds);
            Assert.Single(a.Rounds);
            Assert.Equal("5", a.Settings["Rounds"]);
            Assert.True(File.Exists(Path.Combine(a.StateDirectory, "run.json")));
            Assert.Equal(2, File.ReadAllLines(Path.Combine(a.StateDirectory, "rounds.csv")).Length);
            Assert.Equal(4, File.ReadAllLines(Path.Combine(finished.StateDirectory, "rounds.csv")).Length);
            var listed = (await admin.ListRunsAsync(new ListRunsRequest())).Runs;
            Assert.Equal([runA.RunId, runB.RunId], listed.Select(r => r.RunId));
            Assert.Empty((await admin.ListRunsAsync(new ListRunsRequest { ActiveOnly = true })).Runs);

            // The metrics tell the runs apart: B's three rounds and A's one under their own run label.
            using var http = new HttpClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{coordinator.Address}/metrics") { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await http.SendAsync(request);
            var series = (await response.Content.ReadAsStringAsync()).Split('\n');
            bool Completed(string runId, int rounds) => series.Any(l => l.StartsWith("federated_rounds_completed_total{", StringComparison.Ordinal)
                && l.Contains($"run=\"{runId}\"", StringComparison.Ordinal) && l.EndsWith($" {rounds}", StringComparison.Ordinal));
            Assert.True(Completed(runB.RunId, 3), string.Join('\n', series.Where(l => l.StartsWith("federated_rounds", StringComparison.Ordinal))));
            Assert.True(Completed(runA.RunId, 1));
            Assert.Empty(coordinator.Logs.Errors);
        }
        finally
        {
            foreach (var agent in agents.Values)
            {
                await agent.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task PausedRun_StartsNoRoundUntilResumed_AndResumesAfterARestart()
    {
        string runId;
        await using (var coordinator = await TestCoordinator.StartAsync(Settings()))
        {
            using var channel = GrpcChannel.ForAddress(coordinator.Address);
            var admin = new Admin.AdminClient(channel);
            await using var c1 = await ScriptedAgent.EnrollAsync(coordinator.Address, "c1");
            await using var c2 = await ScriptedAgent.EnrollAsync(coordinator.Address, "c2");
            await c1.ConnectAsync();
            await c2.ConnectAsync();
            var run = await admin.SubmitRunAsync(new SubmitRunRequest { Name = "C", AgentIds = { "c1", "c2" }, Settings = { ["Rounds"] = "3" } });
            runId = run.RunId;
            var t1 = (await c1.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            var t2 = (await c2.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;

            // Paused during round 1: the round still completes; round 2 does not start.
            Assert.Equal("paused", (await admin.PauseRunAsync(new RunRequest { RunId = runId })).State);
            await AnswerAsync(c1, t1);
            await AnswerAsync(c2, t2);
            await WaitForAsync(admin, runId, r => r.CompletedRounds == 1, "round 1");
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c1.NextAsync(CoordinatorMessage.KindOneofCase.Train, TimeSpan.FromSeconds(1.5)));
            var again = await Assert.ThrowsAsync<RpcException>(async () => await admin.PauseRunAsync(new RunRequest { RunId = runId }));
            Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);
        }

        // The coordinator restarts, its own learning rate changed meanwhile: the run is restored, still paused, with its
        // round; resumed, it goes on from round 2 with the settings it was submitted with.
        var changed = Settings();
        changed["Coordinator:Training:LearningRate"] = "0.5";
        await using (var coordinator = await TestCoordinator.StartAsync(changed))
        {
            using var channel = GrpcChannel.ForAddress(coordinator.Address);
            var admin = new Admin.AdminClient(channel);
            var restored = await admin.GetRunAsync(new RunRequest { RunId = runId });
            Assert.Equal("paused", restored.State);
            Assert.Equal(1, restored.CompletedRounds);
            Assert.Single(restored.Rounds);
            await using var c1 = await ScriptedAgent.EnrollAsync(coordinator.Address, "c1");
            await using var c2 = await ScriptedAgent.EnrollAsync(coordinator.Address, "c2");
            await c1.ConnectAsync();
            await c2.ConnectAsync();
            Assert.Equal("running", (await admin.ResumeRunAsync(new RunRequest { RunId = runId })).State);
            var t1 = (await c1.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
            Assert.Equal(2, t1.Round);
            Assert.Equal(0.05, t1.Training.LearningRate, 1e-12);
        }
    }

    [Fact]
    public async Task BadRequests_AreRefusedWithAStatusThatSaysWhy()
    {
        await using var coordinator = await TestCoordinator.StartAsync(Settings());
        using var channel = GrpcChannel.ForAddress(coordinator.Address);
        var admin = new Admin.AdminClient(channel);

        async Task<RpcException> Refused(SubmitRunRequest request) => await Assert.ThrowsAsync<RpcException>(async () => await admin.SubmitRunAsync(request));

        var typo = await Refused(new SubmitRunRequest { AgentIds = { "x" }, Settings = { ["Traning:LearningRate"] = "0.1" } });
        Assert.Equal(StatusCode.InvalidArgument, typo.StatusCode);
        Assert.Contains("Traning", typo.Status.Detail, StringComparison.Ordinal);

        var wide = await Refused(new SubmitRunRequest { AgentIds = { "x" }, Settings = { ["StateDirectory"] = "/tmp" } });
        Assert.Equal(StatusCode.InvalidArgument, wide.StatusCode);
        Assert.Contains("belongs to the coordinator", wide.Status.Detail, StringComparison.Ordinal);

        var range = await Refused(new SubmitRunRequest { AgentIds = { "x" }, Settings = { ["Model"] = "transformer" } });
        Assert.Contains("transformer", range.Status.Detail, StringComparison.Ordinal);

        var value = await Refused(new SubmitRunRequest { AgentIds = { "x" }, Settings = { ["Rounds"] = "many" } });
        Assert.Equal(StatusCode.InvalidArgument, value.StatusCode);

        var strategy = await Refused(new SubmitRunRequest { AgentIds = { "x" }, Settings = { ["Strategy"] = "fedprox", ["StrategyOptions:muu"] = "1" } });
        Assert.Contains("muu", strategy.Status.Detail, StringComparison.Ordinal);

        var nobody = await Refused(new SubmitRunRequest { Settings = { ["Rounds"] = "1" } });
        Assert.Contains("needs agents", nobody.Status.Detail, StringComparison.Ordinal);

        var first = await admin.SubmitRunAsync(new SubmitRunRequest { AgentIds = { "x", "y" } });
        var overlap = await Refused(new SubmitRunRequest { AgentIds = { "y", "z" } });
        Assert.Equal(StatusCode.FailedPrecondition, overlap.StatusCode);
        Assert.Contains(first.RunId, overlap.Status.Detail, StringComparison.Ordinal);

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await admin.GetRunAsync(new RunRequest { RunId = "run-nope" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        // Refused runs leave nothing behind; the accepted one is still there and running.
        Assert.Equal([first.RunId], (await admin.ListRunsAsync(new ListRunsRequest())).Runs.Select(r => r.RunId));
        Assert.Single(Directory.EnumerateDirectories(Path.Combine(_state, "runs")));
    }

    private static async Task<(int Code, string Output, string Error)> CliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Coordinator.Runs.RunsCommand.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Cli_SubmitsListsShowsAndAborts_AndSaysWhatIsWrong()
    {
        await using var coordinator = await TestCoordinator.StartAsync(Settings());
        var address = coordinator.Address;
        var file = Path.Combine(_state, "run.json.in");
        await File.WriteAllTextAsync(file, """{ "Coordinator": { "Rounds": 4, "Training": { "LearningRate": 0.2 } } }""");

        var submitted = await CliAsync("submit", "--address", address, "--agents", "p,q", "--name", "cli run", "--settings", file, "--set", "Rounds=6", "--json");
        Assert.Equal(0, submitted.Code);
        var run = RunInfo.Parser.ParseJson(submitted.Output);
        Assert.Equal(6, run.TotalRounds);
        Assert.Equal(["p", "q"], run.AgentIds);

        var listed = await CliAsync("list", "--address", address);
        Assert.Equal(0, listed.Code);
        Assert.Contains(run.RunId, listed.Output, StringComparison.Ordinal);
        Assert.Contains("running", listed.Output, StringComparison.Ordinal);

        var shown = await CliAsync("show", run.RunId, "--address", address);
        Assert.Contains("setting    Training:LearningRate = 0.2", shown.Output, StringComparison.Ordinal);
        Assert.Contains("setting    Rounds = 6", shown.Output, StringComparison.Ordinal);

        Assert.Contains("paused", (await CliAsync("pause", run.RunId, "--address", address)).Output, StringComparison.Ordinal);
        Assert.Contains("running", (await CliAsync("resume", run.RunId, "--address", address)).Output, StringComparison.Ordinal);
        var aborted = await CliAsync("abort", run.RunId, "--reason", "done with it", "--address", address);
        Assert.Equal(0, aborted.Code);
        Assert.Contains("aborted: done with it", aborted.Output, StringComparison.Ordinal);

        // Refusals: by the coordinator (exit 1, its status and sentence), and bad input (exit 2) before any call.
        var again = await CliAsync("abort", run.RunId, "--address", address);
        Assert.Equal(1, again.Code);
        Assert.Contains("FailedPrecondition", again.Error, StringComparison.Ordinal);
        var typo = await CliAsync("submit", "--address", address, "--agents", "r", "--set", "Rouns=3");
        Assert.Equal(1, typo.Code);
        Assert.Contains("Rouns", typo.Error, StringComparison.Ordinal);
        Assert.Equal(2, (await CliAsync("submit", "--address", address)).Code);
        Assert.Equal(2, (await CliAsync("submit", "--address", address, "--agents", "r", "--set", "novalue")).Code);
        Assert.Equal(2, (await CliAsync("list", "--frobnicate")).Code);
        Assert.Equal(2, (await CliAsync("show", "--address", address)).Code);
        Assert.Equal(2, (await CliAsync("launch")).Code);
        Assert.Equal(2, (await CliAsync("submit", "--address", address, "--agents", "r", "--settings", Path.Combine(_state, "missing.json"))).Code);
        var unreachable = await CliAsync("list", "--address", "http://127.0.0.1:1");
        Assert.Equal(1, unreachable.Code);
        Assert.Contains("Unavailable", unreachable.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminToken_IsRequiredWhenConfigured()
    {
        var settings = Settings();
        settings["Coordinator:Admin:Token"] = "0123456789abcdef-admin";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        using var channel = GrpcChannel.ForAddress(coordinator.Address);
        var admin = new Admin.AdminClient(channel);
        var without = await Assert.ThrowsAsync<RpcException>(async () => await admin.ListRunsAsync(new ListRunsRequest()));
        Assert.Equal(StatusCode.Unauthenticated, without.StatusCode);
        var wrong = await Assert.ThrowsAsync<RpcException>(async () => await admin.ListRunsAsync(new ListRunsRequest(), new Metadata { { "authorization", "Bearer 0123456789abcdef-wrong" } }));
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        var with = await admin.ListRunsAsync(new ListRunsRequest(), new Metadata { { "authorization", "Bearer 0123456789abcdef-admin" } });
        Assert.Empty(with.Runs);
    }
}
