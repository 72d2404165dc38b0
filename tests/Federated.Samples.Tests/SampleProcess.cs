using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Federated.Samples.Tests;

/// <summary>Finds the built samples and runs one as a child process, collecting its output, under a time limit.</summary>
internal static class SampleProcess
{
    /// <summary>The repository root (the folder holding Federated.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    private static string Configuration => typeof(SampleProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BuildConfiguration").Value!;

    /// <summary>Runs <c>dotnet samples/NAME/bin/CONFIG/net10.0/NAME.dll ARGS</c>.</summary>
    public static Task<(int ExitCode, string Output)> RunSampleAsync(string name, params string[] arguments)
    {
        var dll = Path.Combine(RepositoryRoot, "samples", name, "bin", Configuration, "net10.0", name + ".dll");
        Assert.True(File.Exists(dll), $"The sample {name} is not built at {dll}.");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        return RunAsync(dotnet, [dll, .. arguments], TimeSpan.FromMinutes(4));
    }

    /// <summary>Runs <paramref name="executable"/> in the repository root; kills it (and fails) past <paramref name="timeout"/>.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string executable, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(executable)
        {
            WorkingDirectory = RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(executable)} {string.Join(' ', arguments)} did not finish in {timeout}:\n{output}");
        }

        process.WaitForExit();
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is not null)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Federated.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Federated.sln above {AppContext.BaseDirectory}.");
    }
}
