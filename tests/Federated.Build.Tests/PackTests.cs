using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Xml.Linq;
using Xunit;

namespace Federated.Build.Tests;

/// <summary>
/// `dotnet pack` of the solution (with --no-build, over what the test run already built) into a temporary folder writes
/// the four packages, each with its assembly, its XML documentation and the README, and the learning library's package
/// leaves the libtorch backend to the application.
/// </summary>
public sealed class PackTests : IDisposable
{
    private static readonly string[] PackageIds = ["Federated.Protocol", "Federated.Learning", "Federated.Client", "Federated.Coordinator"];

    private readonly string _output = Directory.CreateTempSubdirectory("federated-pack-").FullName;

    [Fact]
    public void Pack_Solution_WritesTheFourPackagesWithDocsAndReadme()
    {
        var (exitCode, output) = Pack();

        Assert.True(exitCode == 0, $"dotnet pack --no-build failed ({exitCode}); it packs what the solution build produced, so build Federated.sln in this configuration first:\n{output}");
        var packages = Directory.GetFiles(_output, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(PackageIds.Length, packages.Count);
        foreach (var id in PackageIds)
        {
            var file = Assert.Single(packages, p => p!.StartsWith(id + ".0.", StringComparison.Ordinal));
            using var zip = ZipFile.OpenRead(Path.Combine(_output, file!));
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("README.md", entries);
            Assert.Contains(entries, e => e.StartsWith("lib/net10.0/", StringComparison.Ordinal) && e.EndsWith(".dll", StringComparison.Ordinal));
            Assert.Contains(entries, e => e.StartsWith("lib/net10.0/", StringComparison.Ordinal) && e.EndsWith(".xml", StringComparison.Ordinal));
            Assert.DoesNotContain(entries, e => e.EndsWith("appsettings.json", StringComparison.Ordinal));
            var nuspec = Nuspec(zip);
            Assert.Equal(id, nuspec.Descendants().Single(e => e.Name.LocalName == "id").Value);
            Assert.Equal("MIT", nuspec.Descendants().Single(e => e.Name.LocalName == "license").Value);
            Assert.False(string.IsNullOrWhiteSpace(nuspec.Descendants().Single(e => e.Name.LocalName == "description").Value));
        }

        using var learning = ZipFile.OpenRead(Directory.GetFiles(_output, "Federated.Learning.*.nupkg").Single());
        var dependencies = Nuspec(learning).Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")!.Value).ToList();
        Assert.Contains("TorchSharp", dependencies);
        Assert.DoesNotContain(dependencies, d => d.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase));
    }

    public void Dispose() => Directory.Delete(_output, recursive: true);

    private static XDocument Nuspec(ZipArchive zip)
    {
        using var stream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XDocument.Load(stream);
    }

    private (int ExitCode, string Output) Pack()
    {
        var configuration = typeof(PackTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "BuildConfiguration").Value!;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet")
        {
            WorkingDirectory = TestEnvironment.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "pack", Path.Combine(TestEnvironment.RepositoryRoot, "Federated.sln"), "-c", configuration, "--no-build", "-o", _output, "-nologo", "-v", "q", "-nodeReuse:false" })
        {
            start.ArgumentList.Add(argument);
        }

        // The test host may inherit MSBuild variables from the `dotnet test` that started it; the child finds its own.
        foreach (var name in start.Environment.Keys.Where(key => key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var standardOutput = process.StandardOutput.ReadToEndAsync();
        var standardError = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet pack did not finish in 3 minutes.");
        }

        process.WaitForExit();
        return (process.ExitCode, standardOutput.Result + standardError.Result);
    }
}
