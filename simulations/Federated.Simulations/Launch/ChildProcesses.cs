using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Net.Client;

namespace Federated.Simulations.Launch;

/// <summary>
/// Child processes of the simulator (multi-process runs, the fault and load harnesses): the shipped programs' builds,
/// start with a log file, free ports, wait for a coordinator to answer.
/// </summary>
internal static class ChildProcesses
{
    /// <summary>Starts <c>dotnet <paramref name="dll"/> arguments</c>, its stdout and stderr copied line by line to <paramref name="logPath"/>.</summary>
    public static Process StartDotnet(string dll, IReadOnlyList<string> arguments, string logPath, bool append = false)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_gcServer"] = "0";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {dll}.");
        var log = new StreamWriter(logPath, append) { AutoFlush = true };
        var gate = new Lock();
        void Write(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (gate)
            {
                log.WriteLine(line);
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Exited += (_, _) =>
        {
            lock (gate)
            {
                log.Dispose();
            }
        };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Deletes <paramref name="directory"/> with everything in it, if it exists, and creates it empty.</summary>
    public static void ResetDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }

        Directory.CreateDirectory(directory);
    }

    /// <summary>A TCP port free on the loopback interface right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// The build output of a shipped program next to this simulator's build (<c>src/PROJECT/bin/CONFIGURATION/net10.0/DLL</c>
    /// under the repository that holds Federated.sln), in the simulator's own configuration.
    /// </summary>
    /// <exception cref="InvalidOperationException">No repository above the simulator, or the program is not built.</exception>
    public static string ShippedDll(string project, string dll)
    {
        var configuration = typeof(ChildProcesses).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "BuildConfiguration")?.Value ?? "Release";
        var path = Path.Combine(RepositoryRoot(), "src", project, "bin", configuration, "net10.0", dll);
        return File.Exists(path) ? path : throw new InvalidOperationException($"'{path}' is missing: build the solution with -c {configuration} first.");
    }

    /// <summary>Waits (up to 120 s) until the coordinator at <paramref name="address"/> answers GetStatus.</summary>
    /// <exception cref="InvalidOperationException">The coordinator process exited first.</exception>
    /// <exception cref="TimeoutException">No answer within 120 s.</exception>
    public static async Task WaitForCoordinatorAsync(string address, Process coordinator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        using var channel = GrpcChannel.ForAddress(address);
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (coordinator.HasExited)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"The coordinator exited with code {coordinator.ExitCode} before it listened; see its log."));
            }

            try
            {
                await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current }, deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Grpc.Core.RpcException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }
        }

        throw new TimeoutException("The coordinator did not answer within 120 s.");
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Federated.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Could not find Federated.sln above the simulator; run it from the repository's build output.");
    }
}
