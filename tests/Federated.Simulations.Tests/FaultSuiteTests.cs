using Federated.Simulations.Fault;

namespace Federated.Simulations.Tests;

/// <summary>The fault suite: its ledger reads the logs right, and a short run of two faults passes.</summary>
public sealed class FaultSuiteTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-faults-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Event(string level, int id, string message) => $"{level}: Federated.Coordinator.Rounds.RoundRunner[{id}]{Environment.NewLine}      {message}";

    [Fact]
    public void Ledger_CountsLostRecollectedUndeliveredAndHostileUpdates()
    {
        // Round 1 runs, is killed after accepting agent-0000, runs again and commits 2 results (both agents).
        // Round 2 accepts three updates (one of them hostile) but its row says 2 were aggregated: one accepted update is lost.
        File.WriteAllLines(Path.Combine(_dir, "coordinator.log"),
        [
            Event("info", 1103, "Round 1: 3 of 3 agents asked, target 3 results, model payload 100 bytes"),
            Event("dbug", 1121, "Round 1: update of agent agent-0000 accepted (100 examples)"),
            FaultLedger.CrashMarker + " SIGKILL in round 1 after 0.10 s ===",
            Event("info", 1103, "Round 1: 3 of 3 agents asked, target 3 results, model payload 100 bytes"),
            Event("dbug", 1121, "Round 1: update of agent agent-0000 accepted (100 examples)"),
            Event("dbug", 1121, "Round 1: update of agent agent-0001 accepted (100 examples)"),
            Event("warn", 1107, "Round 1: update of agent hostile-0000 rejected: Client 'hostile-0000' sent a delta with non-finite values"),
            Event("info", 1103, "Round 2: 3 of 3 agents asked, target 3 results, model payload 100 bytes"),
            Event("dbug", 1121, "Round 2: update of agent agent-0000 accepted (100 examples)"),
            Event("dbug", 1121, "Round 2: update of agent agent-0001 accepted (100 examples)"),
            Event("dbug", 1121, "Round 2: update of agent hostile-0000 accepted (100 examples)"),
            Event("info", 1108, "Late result of round 1 from agent agent-0001 dropped"),
            Event("info", 1108, "Late result of round 2 from agent agent-0000 dropped"), // a failure report: agent-0000's round-2 update was accepted
        ]);
        Directory.CreateDirectory(Path.Combine(_dir, "coordinator"));
        File.WriteAllLines(Path.Combine(_dir, "coordinator", "rounds.csv"), ["round,results,ok", "1,2,true", "2,2,true"]);

        // agent-0000 delivered rounds 1 (twice: before and after the crash) and 2; agent-0001 delivered round 1 twice
        // (once late) and round 2, and a round-2 result whose fate the coordinator never logged.
        static string Delivered(int round) => $"info: Federated.Client.Agent.AgentWorker[2205]{Environment.NewLine}      Delivered t-{round} (round {round}) and its result";
        File.WriteAllLines(Path.Combine(_dir, "agent-0000.log"), [Delivered(1), Delivered(1), Delivered(2)]);
        File.WriteAllLines(Path.Combine(_dir, "agent-0001.log"), [Delivered(1), Delivered(1), Delivered(2), Delivered(2)]);

        var ledger = FaultLedger.Read(_dir, agents: 2, hostileId: "hostile-0000");

        Assert.Equal(2, ledger.CommittedRounds);
        Assert.Equal(0, ledger.FailedRounds);
        Assert.Equal(7, ledger.Delivered);
        Assert.Equal(1, ledger.RecollectedAfterCrash);
        Assert.Equal(1, ledger.Lost);
        Assert.Equal(1, ledger.HostileAccepted);
        Assert.Equal(1, ledger.HostileRejected);
        Assert.Equal(1, ledger.Late);
        Assert.Equal(1, ledger.Undelivered);
        Assert.Contains("non-finite", Assert.Single(ledger.RejectionReasons), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Suite_LinkCutsAndWrongLayouts_EveryRoundCompletes_NothingLost()
    {
        // CI's size: `federated-sim faults` runs every fault 3 times (docs/results/async-and-faults.md).
        var output = Path.Combine(_dir, "faults");
        var console = new StringWriter();
        var settings = new FaultSuiteSettings(["proxy-cuts", "wrong-layout"], Runs: 1, Rounds: 3, Agents: 2, Seed: 5, output);

        var code = await new FaultSuite(settings, console).RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(8));

        Assert.True(code == 0, console.ToString());
        var table = File.ReadAllText(Path.Combine(output, "faults.md"));
        Assert.Contains("| proxy-cuts | 1 |", table, StringComparison.Ordinal);
        Assert.Contains("| wrong-layout | 1 | 3 | 3/3 (0) |", table, StringComparison.Ordinal);
        Assert.Contains("connections reset", table, StringComparison.Ordinal);
        Assert.Contains("layout", File.ReadAllText(Path.Combine(output, "wrong-layout-01", "hostile.log")), StringComparison.Ordinal);
    }
}
