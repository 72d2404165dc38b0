using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Federated.Simulations.Launch;

/// <summary>Child processes of the simulator (multi-process runs, the fault harness): start with a log file, free ports.</summary>
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

    /// <summary>A TCP port free on the loopback interface right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
