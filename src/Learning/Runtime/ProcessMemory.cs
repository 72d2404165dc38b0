using System.Diagnostics;
using System.Globalization;

namespace Federated.Learning.Runtime;

/// <summary>The process's memory high-water mark, for reports.</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size in MB (Linux <c>VmHWM</c>; elsewhere the peak working set).</summary>
    public static double PeakRssMegabytes()
    {
        if (OperatingSystem.IsLinux())
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal) &&
                    long.TryParse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture, out var kb))
                {
                    return kb / 1024.0;
                }
            }
        }

        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64 / (1024.0 * 1024.0);
    }
}
