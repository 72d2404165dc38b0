using System.CommandLine;

namespace Federated.Simulations.Grid;

/// <summary>The <c>collect</c> command: the markdown table of a grid's run folders (see <c>simulations/grids/robustness.sh</c>).</summary>
internal static class CollectCommand
{
    public static Command Create()
    {
        var directory = new Argument<DirectoryInfo>("runs") { Description = "The folder holding one run folder per scenario (each with its summary.json)." };
        var output = new Option<FileInfo?>("--out") { Description = "Write the markdown here instead of standard output." };
        var command = new Command("collect", "Collect the final accuracies of a grid's runs into markdown tables: one row per attack and attacker fraction, one column per aggregator, beside the clean FedAvg run.")
        {
            directory, output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var folder = result.GetValue(directory)!;
            try
            {
                var runs = ResultsTable.ReadAll(folder.FullName);
                if (runs.Count == 0)
                {
                    await Console.Error.WriteLineAsync($"collect: no */summary.json under '{folder.FullName}'.").ConfigureAwait(false);
                    return 2;
                }

                var markdown = ResultsTable.Markdown(runs);
                if (result.GetValue(output) is { } file)
                {
                    await File.WriteAllTextAsync(file.FullName, markdown, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await Console.Out.WriteAsync(markdown).ConfigureAwait(false);
                }

                return 0;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"collect: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}
