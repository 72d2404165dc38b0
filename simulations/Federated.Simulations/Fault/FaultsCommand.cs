using System.CommandLine;

namespace Federated.Simulations.Fault;

/// <summary>
/// The <c>faults</c> command: the fault suite (<see cref="FaultSuite"/>), every fault or those named, N runs each, and
/// a table of rounds completed and updates lost in <c>faults.md</c>. Exit code 0 when every run passed.
/// </summary>
internal static class FaultsCommand
{
    public static Command Create()
    {
        var kinds = new Option<string>("--kinds") { Description = "Comma-separated faults to run (default: all): " + string.Join(", ", FaultSuite.AllKinds) + ".", DefaultValueFactory = _ => "all" };
        var runs = new Option<int>("--runs") { Description = "Runs per fault.", DefaultValueFactory = _ => 3 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds per run.", DefaultValueFactory = _ => 5 };
        var agents = new Option<int>("--agents") { Description = "Honest agent processes per run.", DefaultValueFactory = _ => 4 };
        var seed = new Option<long>("--seed") { Description = "Seed of the fault moments and of the federation.", DefaultValueFactory = _ => 1 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output directory (one folder per run, faults.md).", DefaultValueFactory = _ => new DirectoryInfo("runs/faults") };
        var command = new Command("faults", "The fault suite: agents killed mid-upload, links cut by a loopback proxy, the coordinator killed mid-round, slow agents, and hostile uploads (NaN/Inf, wrong layouts, oversized, garbage, out-of-order chunks); reports rounds completed and updates lost per fault.")
        {
            kinds, runs, rounds, agents, seed, output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var named = result.GetValue(kinds)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var unknown = named.Where(k => k != "all" && !FaultSuite.AllKinds.Contains(k)).ToList();
            if (named.Length == 0 || unknown.Count > 0)
            {
                await Console.Error.WriteLineAsync($"faults: unknown fault(s) {string.Join(", ", unknown.Select(k => $"'{k}'"))}; the faults are {string.Join(", ", FaultSuite.AllKinds)} (or all).").ConfigureAwait(false);
                return 2;
            }

            var settings = new FaultSuiteSettings(
                named.Contains("all") ? FaultSuite.AllKinds : FaultSuite.AllKinds.Where(named.Contains).ToArray(),
                result.GetValue(runs), result.GetValue(rounds), result.GetValue(agents), result.GetValue(seed), result.GetValue(output)!.FullName);
            if (settings.Runs < 1 || settings.Rounds < 2 || settings.Agents < 2)
            {
                await Console.Error.WriteLineAsync("faults: --runs must be at least 1, --rounds and --agents at least 2.").ConfigureAwait(false);
                return 2;
            }

            try
            {
                return await new FaultSuite(settings, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or InvalidDataException)
            {
                await Console.Error.WriteLineAsync($"faults: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}
