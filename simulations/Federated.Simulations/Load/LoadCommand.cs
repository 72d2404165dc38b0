using System.CommandLine;

namespace Federated.Simulations.Load;

/// <summary>
/// The <c>load</c> command: a coordinator process on loopback against N concurrent agent streams (enrol, session,
/// heartbeats with acknowledgements, small uploads) for a fixed window; reports heartbeat latency p50/p99, the
/// coordinator's CPU and RSS, and errors. Exit code 0 when there were no errors, 1 otherwise.
/// </summary>
internal static class LoadCommand
{
    public static Command Create()
    {
        var agents = new Option<int>("--agents") { Description = "Concurrent agents (one session stream each).", DefaultValueFactory = _ => 1000 };
        var seconds = new Option<double>("--seconds") { Description = "Measured window once every session is open.", DefaultValueFactory = _ => 60 };
        var heartbeat = new Option<double>("--heartbeat-seconds") { Description = "Each agent's heartbeat period.", DefaultValueFactory = _ => 1 };
        var uploadBytes = new Option<int>("--upload-bytes") { Description = "Size of each small update.", DefaultValueFactory = _ => 4096 };
        var uploadSeconds = new Option<double>("--upload-seconds") { Description = "Each agent's upload period.", DefaultValueFactory = _ => 20 };
        var seed = new Option<int>("--seed") { Description = "Seed of the agents' phases.", DefaultValueFactory = _ => 1 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output directory (load.md, load.json, coordinator.log).", DefaultValueFactory = _ => new DirectoryInfo("runs/load") };
        var command = new Command("load", "Hold N concurrent agent streams against one coordinator on loopback and report heartbeat latency, the coordinator's CPU and RSS, and errors.")
        {
            agents, seconds, heartbeat, uploadBytes, uploadSeconds, seed, output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = new LoadSettings(result.GetValue(agents), result.GetValue(seconds), result.GetValue(heartbeat), result.GetValue(uploadBytes), result.GetValue(uploadSeconds), result.GetValue(seed), result.GetValue(output)!.FullName);
            if (settings.Agents < 1 || !(settings.Seconds > 0) || !(settings.HeartbeatSeconds > 0) || settings.UploadBytes < 1 || !(settings.UploadSeconds > 0))
            {
                await Console.Error.WriteLineAsync("load: --agents, --seconds, --heartbeat-seconds, --upload-bytes and --upload-seconds must be positive.").ConfigureAwait(false);
                return 2;
            }

            try
            {
                var report = await new LoadRunner(settings, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false);
                Console.WriteLine(File.ReadAllText(Path.Combine(settings.OutputDirectory, "load.md")));
                return report.Errors == 0 ? 0 : 1;
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException)
            {
                await Console.Error.WriteLineAsync($"load: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}
