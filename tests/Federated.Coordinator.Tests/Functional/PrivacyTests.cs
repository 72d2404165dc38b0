using System.Globalization;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Privacy;
using Federated.Learning.Privacy;
using Federated.Protocol.V1;
using Microsoft.Extensions.DependencyInjection;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>Differential privacy in the round loop: the Poisson cohort, ε per round, and the budget stop.</summary>
public sealed class PrivacyTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-privacy-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private Dictionary<string, string?> Settings(int rounds, double sampleRate, double z, string seed)
    {
        var settings = TestCoordinator.Settings(_state, rounds);
        settings["Coordinator:MinFit"] = "1";
        settings["Coordinator:Privacy:Enabled"] = "true";
        settings["Coordinator:Privacy:SampleRate"] = sampleRate.ToString(CultureInfo.InvariantCulture);
        settings["Coordinator:Privacy:NoiseMultiplier"] = z.ToString(CultureInfo.InvariantCulture);
        settings["Coordinator:Privacy:ClipBound"] = "0.5";
        settings["Coordinator:Privacy:Seed"] = seed;
        return settings;
    }

    private List<Dictionary<string, string>> Rows()
    {
        var lines = File.ReadAllLines(Path.Combine(_state, "rounds.csv"));
        var header = lines[0].Split(',');
        return [.. lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal))];
    }

    private static async Task AnswerAsync(ScriptedAgent agent, int round)
    {
        var task = (await agent.NextAsync(CoordinatorMessage.KindOneofCase.Train)).Train;
        Assert.Equal(round, task.Round);
        var transfer = await agent.UploadUpdateAsync(task, g => Enumerable.Repeat(0.01f, g.Length).ToArray());
        await agent.SendResultAsync(new TaskResult { TaskId = task.TaskId, Round = task.Round, Ok = true, UploadTransferId = transfer, NumExamples = 100, LocalSteps = 1 });
    }

    [Fact]
    public async Task Rounds_EnrolledPopulation_AskExactlyThePoissonSampleOfEachRound_AndReleaseNoiseWhenNobodyAnswers()
    {
        var roster = Path.Combine(_state, "roster.txt");
        var ids = Enumerable.Range(0, 30).Select(i => $"device-{i:D2}").ToArray();
        File.WriteAllLines(roster, ids);
        var settings = Settings(rounds: 6, sampleRate: 0.3, z: 1.0, seed: "11");
        settings["Coordinator:Population"] = "enrolled";
        settings["Coordinator:RosterFile"] = roster;
        settings["Coordinator:MinAvailable"] = "1";
        settings["Coordinator:RoundDeadlineSeconds"] = "0.5";
        var activator = new RecordingActivator();
        await using var coordinator = await TestCoordinator.StartAsync(settings, services: s => s.AddSingleton<Agents.IAgentActivator>(activator));

        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.Finished, TimeSpan.FromSeconds(60), "six rounds nobody answers");

        var expected = CoordinatorPrivacy.Create(new CoordinatorOptions { Rounds = 6, Privacy = { Enabled = true, NoiseMultiplier = 1, SampleRate = 0.3, Seed = "11" } })!;
        var sizes = new List<int>();
        for (var round = 1; round <= 6; round++)
        {
            var asked = activator.Activated.Where(a => a.Round == round).Select(a => a.AgentId).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(expected.Sample(ids, round), asked);
            sizes.Add(asked.Count);
        }

        Assert.True(sizes.Distinct().Count() > 1, $"Poisson cohorts of 30 at q = 0.3 should vary in size: {string.Join(", ", sizes)}");
        var rows = Rows();
        Assert.Equal(6, rows.Count);
        // Nobody answers, yet every round releases the noise alone and is charged: ε is the accountant's after r rounds,
        // and each round's model differs from the one before.
        for (var round = 1; round <= 6; round++)
        {
            var row = rows[round - 1];
            Assert.Equal("true", row["ok"]);
            Assert.Equal("0", row["results"]);
            Assert.Equal(RdpAccountant.Epsilon(0.3, 1.0, round, 1e-5).Epsilon, double.Parse(row["epsilon"], CultureInfo.InvariantCulture), 6);
        }

        Assert.Equal(6, rows.Select(r => r["global_sha256"]).Distinct().Count());
        Assert.True(coordinator.Logs.Contains("the noise alone was released"));
        Assert.Empty(coordinator.Logs.Errors);
    }

    [Fact]
    public async Task Budget_NextRoundWouldExceedIt_RunFinishesBeforeTheRound_AndARestartDoesNotRunIt()
    {
        // q = 1 (both agents every round), z = 2: the budget lies between ε after 2 rounds and ε after 3.
        var epsilon2 = RdpAccountant.Epsilon(1, 2, 2, 1e-5).Epsilon;
        var epsilon3 = RdpAccountant.Epsilon(1, 2, 3, 1e-5).Epsilon;
        var settings = Settings(rounds: 5, sampleRate: 1, z: 2, seed: "3");
        settings["Coordinator:Privacy:EpsilonBudget"] = ((epsilon2 + epsilon3) / 2).ToString("R", CultureInfo.InvariantCulture);
        await using (var coordinator = await TestCoordinator.StartAsync(settings))
        {
            await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
            await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");
            await a.ConnectAsync();
            await b.ConnectAsync();
            for (var round = 1; round <= 2; round++)
            {
                await Task.WhenAll(AnswerAsync(a, round), AnswerAsync(b, round));
            }

            await TestCoordinator.WaitUntilAsync(() => coordinator.Status.Finished, TimeSpan.FromSeconds(30), "the budget stop");

            Assert.Equal(2, coordinator.Status.CompletedRounds);
            Assert.Contains("round 3", coordinator.Status.StopReason, StringComparison.Ordinal);
            Assert.True(coordinator.Logs.Contains("Privacy budget reached: round 3"), string.Join("\n", coordinator.Logs.Entries.Select(e => e.Message)));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a.NextAsync(CoordinatorMessage.KindOneofCase.Train, TimeSpan.FromSeconds(1)));
            var rows = Rows();
            Assert.Equal(2, rows.Count);
            Assert.Equal(RdpAccountant.Epsilon(1, 2, 1, 1e-5).Epsilon, double.Parse(rows[0]["epsilon"], CultureInfo.InvariantCulture), 6);
            Assert.Equal(epsilon2, double.Parse(rows[1]["epsilon"], CultureInfo.InvariantCulture), 6);
            Assert.Equal("2", rows[1]["results"]);
            Assert.Empty(coordinator.Logs.Errors);
        }

        // The ledger came back with the checkpoint: the restarted coordinator refuses round 3 without asking anybody.
        await using var restarted = await TestCoordinator.StartAsync(settings);
        await TestCoordinator.WaitUntilAsync(() => restarted.Status.Finished, TimeSpan.FromSeconds(30), "the budget stop after the restart");
        Assert.Equal(2, restarted.Status.CompletedRounds);
        Assert.True(restarted.Logs.Contains("2 rounds charged so far"), string.Join("\n", restarted.Logs.Entries.Select(e => e.Message)));
        Assert.True(restarted.Logs.Contains("Privacy budget reached: round 3"));
        Assert.Empty(restarted.Logs.Errors);
    }
}
