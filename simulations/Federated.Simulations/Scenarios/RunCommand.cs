using System.CommandLine;

namespace Federated.Simulations.Scenarios;

/// <summary>The root command's scenario form: <c>federated-sim &lt;scenario.json&gt; [--out DIR]</c>.</summary>
internal static class RunCommand
{
    public static void Attach(RootCommand root)
    {
        var file = new Argument<FileInfo?>("scenario") { Description = "A scenario JSON file (see simulations/scenarios/).", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Run folder (default runs/<scenario name>-<UTC time>)." };
        var seed = new Option<long?>("--seed") { Description = "Override the scenario's seed (repeat a scenario over seeds without copying it)." };
        root.Arguments.Add(file);
        root.Options.Add(output);
        root.Options.Add(seed);
        root.SetAction(async (result, cancellationToken) =>
        {
            var path = result.GetValue(file);
            if (path is null)
            {
                await Console.Error.WriteLineAsync("federated-sim: give a scenario file (e.g. simulations/scenarios/default.json) or a command (baseline, launch); --help lists them.").ConfigureAwait(false);
                return 2;
            }

            try
            {
                var scenario = Scenario.Load(path.FullName);
                if (result.GetValue(seed) is { } overridden)
                {
                    scenario.Seed = overridden;
                    scenario.Name += $"-seed{overridden}";
                }

                var runDirectory = result.GetValue(output)?.FullName
                    ?? Path.GetFullPath(Path.Combine("runs", $"{scenario.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
                return await ScenarioRunner.RunAsync(scenario, runDirectory, Console.Out, cancellationToken, interactive: !Console.IsOutputRedirected).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ScenarioException or IOException or InvalidOperationException or TimeoutException or ArgumentException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"federated-sim: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
    }
}
