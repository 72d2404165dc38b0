using System.Reflection;
using System.Runtime.InteropServices;
using Xunit;

namespace Federated.Build.Tests;

/// <summary>Where the tests find the real library, the repository and scratch space.</summary>
internal static class TestEnvironment
{
    /// <summary>The GCC 13 marker version that TorchSharp 0.107.0's native library needs.</summary>
    public const string Glibcxx32 = "GLIBCXX_3.4.32";

    /// <summary>The TorchSharp package folder, as restore resolved it ($(PkgTorchSharp)).</summary>
    public static string TorchSharpPackagePath
    {
        get
        {
            var path = typeof(TestEnvironment).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .SingleOrDefault(attribute => attribute.Key == "TorchSharpPackagePath")?.Value;
            if (!string.IsNullOrEmpty(path))
            {
                return path;
            }

            // Fallback: the NuGet global packages folder.
            var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
            if (string.IsNullOrEmpty(root))
            {
                root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            }

            return Path.Combine(root, "torchsharp", "0.107.0");
        }
    }

    /// <summary>The real libLibTorchSharp.so in the NuGet cache. Tests only ever read it.</summary>
    public static string LibTorchSharpPath
    {
        get
        {
            var path = Path.Combine(TorchSharpPackagePath, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            Assert.True(File.Exists(path), $"TorchSharp's native library is not restored at {path}.");
            return path;
        }
    }

    /// <summary>The repository root: the closest folder above the test binaries that holds Federated.sln or global.json.</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory != null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "Federated.sln")) || File.Exists(Path.Combine(directory.FullName, "global.json")))
                {
                    return directory.FullName;
                }
            }

            throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} holds Federated.sln or global.json.");
        }
    }

    /// <summary>GLIBCXX_3.4, GLIBCXX_3.4.1 ... GLIBCXX_3.4.{last} and CXXABI_1.3 ... CXXABI_1.3.{lastAbi}, like a libstdc++ of that age defines.</summary>
    public static HashSet<string> LibStdCxxVersions(int last, int lastAbi)
    {
        var versions = new HashSet<string>(StringComparer.Ordinal) { "GLIBCXX_3.4", "CXXABI_1.3" };
        for (var i = 1; i <= last; i++)
        {
            versions.Add($"GLIBCXX_3.4.{i}");
        }

        for (var i = 1; i <= lastAbi; i++)
        {
            versions.Add($"CXXABI_1.3.{i}");
        }

        return versions;
    }
}

/// <summary>A scratch folder deleted at dispose.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory()
    {
        Path = Directory.CreateTempSubdirectory("federated-build-tests-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>A fact that runs only on Linux (hard links, the system libstdc++).</summary>
internal sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Skip = "Linux only.";
        }
    }
}

/// <summary>libc calls that .NET does not expose.</summary>
internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LinkNative(string existingPath, string newPath);

    /// <summary>Creates a hard link, as ln does.</summary>
    public static void Link(string existingPath, string newPath)
    {
        if (LinkNative(existingPath, newPath) != 0)
        {
            throw new IOException($"link({existingPath}, {newPath}) failed with errno {Marshal.GetLastPInvokeError()}.");
        }
    }
}
