using System.CommandLine;

namespace Federated.Simulations.Reference;

/// <summary>The <c>config-reference</c> command: writes the configuration reference generated from the options classes.</summary>
internal static class ConfigReferenceCommand
{
    public static Command Create()
    {
        var output = new Option<FileInfo>("--out") { Description = "Where to write it.", DefaultValueFactory = _ => new FileInfo("docs/configuration.md") };
        var command = new Command("config-reference", "Write the configuration reference (every Coordinator and Client key, type, default, range and description) generated from the options classes.")
        {
            output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var file = result.GetValue(output)!;
            try
            {
                Directory.CreateDirectory(file.DirectoryName!);
                await File.WriteAllTextAsync(file.FullName, ConfigurationReference.Generate(), cancellationToken).ConfigureAwait(false);
                Console.WriteLine($"config-reference: wrote {file.FullName}");
                return 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"config-reference: could not write {file.FullName}: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}
