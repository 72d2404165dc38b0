using System.CommandLine;

namespace Federated.Simulations.Fuzz;

/// <summary>
/// The <c>fuzz</c> command: mutational fuzzing of every decoder the coordinator exposes — codec payloads, uploaded
/// payloads (whole and streamed), chunk reassembly, safetensors and round checkpoints, and every RPC of a live
/// coordinator — for a fixed number of inputs per target; then the fuzzed coordinator runs a small federation to the end.
/// Exit code 0 when nothing crashed, hung or over-allocated and the federation finished; 1 otherwise.
/// </summary>
internal static class FuzzCommand
{
    public static Command Create()
    {
        var inputs = new Option<int>("--inputs") { Description = "Inputs per target.", DefaultValueFactory = _ => 20_000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the mutations.", DefaultValueFactory = _ => 1 };
        var targets = new Option<string>("--targets") { Description = "Comma-separated target-name prefixes (codec, payload, stream-scanner, chunks, safetensors, checkpoint, grpc:…); empty: all.", DefaultValueFactory = _ => string.Empty };
        var timeout = new Option<double>("--timeout-seconds") { Description = "Watchdog per input: an input without an answer by then is a hang.", DefaultValueFactory = _ => 10 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output directory (fuzz.md, fuzz.json, findings/, federation/).", DefaultValueFactory = _ => new DirectoryInfo("runs/fuzz") };
        var command = new Command("fuzz", "Fuzz every decoder the coordinator exposes for a fixed number of inputs per target, then check that the fuzzed coordinator still runs a federation.")
        {
            inputs, seed, targets, timeout, output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = new FuzzSettings(
                result.GetValue(inputs),
                result.GetValue(seed),
                result.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                TimeSpan.FromSeconds(result.GetValue(timeout)),
                result.GetValue(output)!.FullName);
            if (settings.Inputs < 1 || !(settings.InputTimeout > TimeSpan.Zero))
            {
                await Console.Error.WriteLineAsync("fuzz: --inputs and --timeout-seconds must be positive.").ConfigureAwait(false);
                return 2;
            }

            if (settings.Targets.FirstOrDefault(t => !FuzzRunner.TargetNames.Any(n => n.StartsWith(t, StringComparison.Ordinal))) is { } unknown)
            {
                await Console.Error.WriteLineAsync($"fuzz: no target starts with '{unknown}'; the targets are {string.Join(", ", FuzzRunner.TargetNames)}.").ConfigureAwait(false);
                return 2;
            }

            try
            {
                var report = await new FuzzRunner(settings, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false);
                Console.WriteLine(report.Clean
                    ? $"fuzz: clean; report {Path.Combine(settings.OutputDirectory, "fuzz.md")}"
                    : $"fuzz: FINDINGS; see {Path.Combine(settings.OutputDirectory, "fuzz.md")}");
                return report.Clean ? 0 : 1;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"fuzz: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}
