using System.CommandLine;

namespace Federated.Simulations.Fault;

/// <summary>
/// The <c>fault</c> command: runs a small differentially private federation (coordinator and agents as separate
/// processes) once uninterrupted, then N times with the coordinator killed by SIGKILL at a random moment during a
/// random round and restarted, and compares completed rounds, metrics rows and ε with the uninterrupted run.
/// </summary>
internal static class FaultCommand
{
    public static Command Create()
    {
        var runs = new Option<int>("--runs") { Description = "Runs with a kill.", DefaultValueFactory = _ => 10 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds per run.", DefaultValueFactory = _ => 6 };
        var agents = new Option<int>("--agents") { Description = "Agent processes.", DefaultValueFactory = _ => 3 };
        var seed = new Option<long>("--seed") { Description = "Seed of the kill moments (and of the federation).", DefaultValueFactory = _ => 1 };
        var store = new Option<string>("--store") { Description = "Coordinator:Store of the coordinator: sqlite or file.", DefaultValueFactory = _ => "sqlite" };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output directory (one folder per run, fault.md).", DefaultValueFactory = _ => new DirectoryInfo("runs/fault") };
        var command = new Command("fault", "Kill the coordinator with SIGKILL at a random moment during a round, restart it, and check that every run ends with the rounds, metrics rows and ε of an uninterrupted run.")
        {
            runs, rounds, agents, seed, store, output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = new FaultSettings(result.GetValue(runs), result.GetValue(rounds), result.GetValue(agents), result.GetValue(seed), result.GetValue(store)!, result.GetValue(output)!.FullName);
            if (settings.Runs < 1 || settings.Rounds < 1 || settings.Agents < 1 || settings.Store is not ("sqlite" or "file"))
            {
                await Console.Error.WriteLineAsync("fault: --runs, --rounds and --agents must be positive and --store sqlite or file.").ConfigureAwait(false);
                return 2;
            }

            try
            {
                return await new FaultRunner(settings, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or InvalidDataException)
            {
                await Console.Error.WriteLineAsync($"fault: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}

/// <summary>Settings of the fault command.</summary>
internal sealed record FaultSettings(int Runs, int Rounds, int Agents, long Seed, string Store, string OutputDirectory);
