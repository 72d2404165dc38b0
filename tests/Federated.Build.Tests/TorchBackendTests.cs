using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Federated.Build.Tests;

/// <summary>
/// build/TorchBackend.targets picks the TorchSharp and libtorch packages. These tests only evaluate
/// src/Learning/Federated.Learning.csproj in a child `dotnet msbuild` (no restore, no build), so they write nothing
/// and cannot disturb a build running beside them.
/// </summary>
public sealed class TorchBackendTests
{
    private static readonly TimeSpan _timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public void PackageReferences_DefaultBackendOnLinux_AreTorchSharpAndLibTorchCpuLinux()
    {
        var packages = PackageReferences("-p:RuntimeIdentifier=linux-x64");

        Assert.Contains("TorchSharp", packages);
        Assert.Contains("libtorch-cpu-linux-x64", packages);
        Assert.DoesNotContain(packages, p => p.StartsWith("libtorch-cuda", StringComparison.Ordinal));
    }

    [Fact]
    public void PackageReferences_CudaOnLinux_AreTorchSharpAndLibTorchCuda()
    {
        var packages = PackageReferences("-p:FederatedTorchBackend=cuda", "-p:RuntimeIdentifier=linux-x64");

        Assert.Contains("TorchSharp", packages);
        Assert.Contains("libtorch-cuda-12.8-linux-x64", packages);
        Assert.DoesNotContain(packages, p => p.StartsWith("libtorch-cpu", StringComparison.Ordinal));
    }

    [Fact]
    public void PackageReferences_CudaOnWindows_IsTheTorchSharpCudaBundleAlone()
    {
        var packages = PackageReferences("-p:FederatedTorchBackend=cuda", "-p:RuntimeIdentifier=win-x64");

        Assert.Contains("TorchSharp-cuda-windows", packages);
        Assert.DoesNotContain("TorchSharp", packages);
        Assert.DoesNotContain(packages, p => p.StartsWith("libtorch", StringComparison.Ordinal));
    }

    [Fact]
    public void PackageReferences_CpuOnWindows_IsLibTorchCpuWindows()
    {
        var packages = PackageReferences("-p:FederatedTorchBackend=cpu", "-p:RuntimeIdentifier=win-x64");

        Assert.Contains("TorchSharp", packages);
        Assert.Contains("libtorch-cpu-win-x64", packages);
    }

    [Fact]
    public void CheckTorchBackend_UnknownBackend_FailsWithTheMessage()
    {
        var (exitCode, output) = RunMsBuild("-t:FederatedCheckTorchBackend", "-p:FederatedTorchBackend=rocm", "-p:RuntimeIdentifier=linux-x64");

        Assert.NotEqual(0, exitCode);
        Assert.Contains("FederatedTorchBackend must be 'cpu' or 'cuda', not 'rocm'.", output, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckTorchBackend_UnsupportedRuntime_FailsWithTheMessage()
    {
        var (exitCode, output) = RunMsBuild("-t:FederatedCheckTorchBackend", "-p:FederatedTorchBackend=cpu", "-p:RuntimeIdentifier=linux-arm64");

        Assert.NotEqual(0, exitCode);
        Assert.Contains("No libtorch package for FederatedTorchBackend=cpu on runtime 'linux-arm64'", output, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckTorchBackend_CudaOnLinux_Passes()
    {
        var (exitCode, output) = RunMsBuild("-t:FederatedCheckTorchBackend", "-p:FederatedTorchBackend=cuda", "-p:RuntimeIdentifier=linux-x64");

        Assert.True(exitCode == 0, output);
    }

    private static List<string> PackageReferences(params string[] properties)
    {
        var (exitCode, output) = RunMsBuild(new[] { "-getItem:PackageReference" }.Concat(properties).ToArray());
        Assert.True(exitCode == 0, output);

        using var json = JsonDocument.Parse(output);
        return json.RootElement.GetProperty("Items").GetProperty("PackageReference").EnumerateArray()
            .Select(item => item.GetProperty("Identity").GetString() ?? string.Empty)
            .ToList();
    }

    private static (int ExitCode, string Output) RunMsBuild(params string[] arguments)
    {
        var root = TestEnvironment.RepositoryRoot;
        var start = new ProcessStartInfo(DotnetExecutable())
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("msbuild");
        start.ArgumentList.Add(Path.Combine(root, "src", "Learning", "Federated.Learning.csproj"));
        start.ArgumentList.Add("-nologo");
        start.ArgumentList.Add("-nodeReuse:false");
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // The test host may inherit MSBuild variables from the `dotnet test` that started it; the child finds its own.
        foreach (var name in start.Environment.Keys.Where(key => key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";

        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var standardOutput = process.StandardOutput.ReadToEndAsync();
        var standardError = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(_timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet msbuild {string.Join(' ', arguments)} did not finish in {_timeout}.");
        }

        process.WaitForExit();
        return (process.ExitCode, standardOutput.Result + standardError.Result);
    }

    private static string DotnetExecutable()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host))
        {
            return host;
        }

        var current = Environment.ProcessPath;
        return current != null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
    }
}
