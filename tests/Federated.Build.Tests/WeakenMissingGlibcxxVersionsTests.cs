using System.Collections;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Xunit;

namespace Federated.Build.Tests;

public sealed class WeakenMissingGlibcxxVersionsTests
{
    [LinuxFact]
    public void Execute_SyntheticGcc12System_MarksGlibcxx32WeakAndLogsIt()
    {
        using var directory = new TemporaryDirectory();
        var library = CopyLibrary(directory);
        var system = directory.File("libstdc++.so.6");
        File.WriteAllBytes(system, new SyntheticElf().Defines("libstdc++.so.6", TestEnvironment.LibStdCxxVersions(30, 13)).Build());
        var engine = new RecordingBuildEngine();
        var task = new WeakenMissingGlibcxxVersions { BuildEngine = engine, Files = new ITaskItem[] { new TaskItem(library) }, SystemLibrary = system };

        Assert.True(task.Execute());

        Assert.Empty(engine.Errors);
        var message = Assert.Single(engine.Messages, m => m.Contains("marked GLIBCXX_3.4.32 weak", StringComparison.Ordinal));
        Assert.Contains(library, message, StringComparison.Ordinal);
        Assert.Contains("has up to GLIBCXX_3.4.30", message, StringComparison.Ordinal);
        Assert.True(Glibcxx32(library).IsWeak);
    }

    [LinuxFact]
    public void Execute_MissingVersionBindsRealSymbols_FailsAndLeavesTheFile()
    {
        using var directory = new TemporaryDirectory();
        var library = CopyLibrary(directory);
        var before = File.ReadAllBytes(library);
        var system = directory.File("libstdc++.so.6");
        File.WriteAllBytes(system, new SyntheticElf().Defines("libstdc++.so.6", TestEnvironment.LibStdCxxVersions(30, 13)).Build());
        var engine = new RecordingBuildEngine();
        var task = new WeakenMissingGlibcxxVersions
        {
            BuildEngine = engine,
            Files = new ITaskItem[] { new TaskItem(library) },
            SystemLibrary = system,
            AllowedSymbols = Array.Empty<string>(),
        };

        Assert.False(task.Execute());

        var error = Assert.Single(engine.Errors);
        Assert.Contains("GLIBCXX_3.4.32", error, StringComparison.Ordinal);
        Assert.Contains(ElfVersionPatcher.IosBaseLibraryInit, error, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(library));
    }

    [LinuxFact]
    public void Execute_RealSystemLibStdCxx_PatchesExactlyWhenTheSystemLacksGlibcxx32()
    {
        using var directory = new TemporaryDirectory();
        var library = CopyLibrary(directory);
        var system = ElfVersionPatcher.FindSystemLibrary(ElfVersionPatcher.LibStdCxx);
        Assert.NotNull(system);
        var systemHasIt = ElfVersionPatcher.ReadDefinedVersions(system).Contains(TestEnvironment.Glibcxx32);
        var engine = new RecordingBuildEngine();
        var task = new WeakenMissingGlibcxxVersions { BuildEngine = engine, Files = new ITaskItem[] { new TaskItem(library) } };

        Assert.True(task.Execute());

        Assert.Empty(engine.Errors);
        Assert.Equal(!systemHasIt, Glibcxx32(library).IsWeak);
    }

    [LinuxFact]
    public void Execute_NotAnElfFile_LogsAnErrorInsteadOfThrowing()
    {
        using var directory = new TemporaryDirectory();
        var library = directory.File("libLibTorchSharp.so");
        File.WriteAllText(library, "not a library");
        var engine = new RecordingBuildEngine();
        var task = new WeakenMissingGlibcxxVersions { BuildEngine = engine, Files = new ITaskItem[] { new TaskItem(library) } };

        Assert.False(task.Execute());

        var error = Assert.Single(engine.Errors);
        Assert.Contains(library, error, StringComparison.Ordinal);
    }

    private static string CopyLibrary(TemporaryDirectory directory)
    {
        var library = directory.File("libLibTorchSharp.so");
        File.Copy(TestEnvironment.LibTorchSharpPath, library);
        return library;
    }

    private static VersionNeed Glibcxx32(string library) =>
        ElfVersionPatcher.ReadVersionNeeds(File.ReadAllBytes(library)).Single(n => n.Version == TestEnvironment.Glibcxx32);

    /// <summary>Collects what a task logs.</summary>
    private sealed class RecordingBuildEngine : IBuildEngine
    {
        public List<string> Errors { get; } = new();

        public List<string> Warnings { get; } = new();

        public List<string> Messages { get; } = new();

        public bool ContinueOnError => false;

        public int LineNumberOfTaskNode => 0;

        public int ColumnNumberOfTaskNode => 0;

        public string ProjectFileOfTaskNode => "test.proj";

        public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) =>
            throw new NotSupportedException();

        public void LogCustomEvent(CustomBuildEventArgs e)
        {
        }

        public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Add(e.Message ?? string.Empty);

        public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e.Message ?? string.Empty);

        public void LogWarningEvent(BuildWarningEventArgs e) => Warnings.Add(e.Message ?? string.Empty);
    }
}
