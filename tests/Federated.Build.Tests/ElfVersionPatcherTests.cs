using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace Federated.Build.Tests;

public sealed class ElfVersionPatcherTests
{
    private const string LibStdCxx = ElfVersionPatcher.LibStdCxx;

    // Debian 12: libstdc++ from GCC 12 defines GLIBCXX_3.4 ... 3.4.30 and CXXABI_1.3 ... 1.3.13.
    private static readonly HashSet<string> _gcc12Versions = TestEnvironment.LibStdCxxVersions(30, 13);

    [Fact]
    public void ReadVersionNeeds_RealLibTorchSharp_NeedsGlibcxx32OnlyForTheIosBaseMarker()
    {
        var needs = ElfVersionPatcher.ReadVersionNeeds(File.ReadAllBytes(TestEnvironment.LibTorchSharpPath));

        var need = Assert.Single(needs, need => need.Version == TestEnvironment.Glibcxx32);
        Assert.Equal(LibStdCxx, need.File);
        Assert.False(need.IsWeak);
        Assert.Equal(new[] { ElfVersionPatcher.IosBaseLibraryInit }, need.Symbols);

        // The rest of the table parses too: the files and the oldest versions every C++ library needs.
        Assert.Contains(needs, n => n.File == "libc.so.6" && n.Version == "GLIBC_2.2.5");
        Assert.Contains(needs, n => n.File == LibStdCxx && n.Version == "GLIBCXX_3.4" && n.Symbols.Count > 0);
        Assert.Contains(needs, n => n.File == LibStdCxx && n.Version == "CXXABI_1.3" && n.Symbols.Count > 0);
        Assert.All(needs, n => Assert.True(n.Index >= 2, $"{n} has a reserved index."));
        Assert.Equal(needs.Count, needs.Select(n => n.Index).Distinct().Count());
    }

    [Fact]
    public void WeakenMissing_RealLibraryOnGcc12System_ChangesOnlyTheFlagsOfGlibcxx32()
    {
        var original = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        var patched = (byte[])original.Clone();

        var result = ElfVersionPatcher.WeakenMissing(patched, LibStdCxx, _gcc12Versions);

        Assert.Equal(new[] { TestEnvironment.Glibcxx32 }, result.Weakened);
        Assert.Empty(result.AlreadyWeak);
        Assert.Empty(result.Blocked);
        Assert.True(result.Changed);

        var flagsOffset = ElfVersionPatcher.ReadVersionNeeds(original).Single(n => n.Version == TestEnvironment.Glibcxx32).FlagsOffset;
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.NotEmpty(changed);
        Assert.All(changed, i => Assert.InRange(i, flagsOffset, flagsOffset + 1));

        var before = ElfVersionPatcher.ReadVersionNeeds(original);
        var after = ElfVersionPatcher.ReadVersionNeeds(patched);
        Assert.Equal(before.Count, after.Count);
        foreach (var (old, now) in before.Zip(after))
        {
            var expected = old.Version == TestEnvironment.Glibcxx32 ? (ushort)(old.Flags | ElfVersionPatcher.VerFlagWeak) : old.Flags;
            Assert.Equal(expected, now.Flags);
            Assert.Equal(old.Symbols, now.Symbols);
        }
    }

    [Fact]
    public void WeakenMissing_AlreadyPatched_IsANoOp()
    {
        var bytes = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        ElfVersionPatcher.WeakenMissing(bytes, LibStdCxx, _gcc12Versions);
        var once = (byte[])bytes.Clone();

        var again = ElfVersionPatcher.WeakenMissing(bytes, LibStdCxx, _gcc12Versions);

        Assert.False(again.Changed);
        Assert.Equal(new[] { TestEnvironment.Glibcxx32 }, again.AlreadyWeak);
        Assert.Equal(once, bytes);
    }

    [Fact]
    public void WeakenMissing_SystemHasGlibcxx32_ChangesNothing()
    {
        var original = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        var bytes = (byte[])original.Clone();

        // Debian 13 / Ubuntu 24.04: GCC 14's libstdc++ defines up to GLIBCXX_3.4.33.
        var result = ElfVersionPatcher.WeakenMissing(bytes, LibStdCxx, TestEnvironment.LibStdCxxVersions(33, 13));

        Assert.False(result.Changed);
        Assert.Empty(result.AlreadyWeak);
        Assert.Empty(result.Blocked);
        Assert.Equal(original, bytes);
    }

    [Fact]
    public void WeakenMissing_NoAllowedSymbols_ReportsBlockedAndChangesNothing()
    {
        var original = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        var bytes = (byte[])original.Clone();

        var result = ElfVersionPatcher.WeakenMissing(bytes, LibStdCxx, _gcc12Versions, allowedSymbols: Array.Empty<string>());

        var blocked = Assert.Single(result.Blocked);
        Assert.Equal(TestEnvironment.Glibcxx32, blocked.Version);
        Assert.Equal(new[] { ElfVersionPatcher.IosBaseLibraryInit }, blocked.Symbols);
        Assert.False(result.Changed);
        Assert.Equal(original, bytes);
    }

    [Fact]
    public void WeakenMissing_MissingVersionWithRealSymbols_IsBlockedWhileTheMarkerIsWeakened()
    {
        // A system whose CXXABI stops at 1.3.12: CXXABI_1.3.13 binds real symbols of the C++ runtime.
        var original = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        var bytes = (byte[])original.Clone();
        var cxxabi13 = ElfVersionPatcher.ReadVersionNeeds(original).Single(n => n.Version == "CXXABI_1.3.13");

        var result = ElfVersionPatcher.WeakenMissing(bytes, LibStdCxx, TestEnvironment.LibStdCxxVersions(30, 12));

        var blocked = Assert.Single(result.Blocked);
        Assert.Equal("CXXABI_1.3.13", blocked.Version);
        Assert.Equal(cxxabi13.Symbols, blocked.Symbols);
        Assert.NotEmpty(blocked.Symbols);
        Assert.Equal(new[] { TestEnvironment.Glibcxx32 }, result.Weakened);
        Assert.Equal(original[(int)cxxabi13.FlagsOffset], bytes[(int)cxxabi13.FlagsOffset]);
    }

    [Fact]
    public void WeakenMissing_OtherNeededFile_OnlyThatFilesVersionsAreConsidered()
    {
        var original = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        var bytes = (byte[])original.Clone();

        // Against a libc with no versions at all, only memcpy@GLIBC_2.14 binds nothing but the allowed symbol.
        var libc = ElfVersionPatcher.WeakenMissing(bytes, "libc.so.6", Array.Empty<string>(), new[] { "memcpy" });
        var absent = ElfVersionPatcher.WeakenMissing(bytes, "libstdc++.so.5", Array.Empty<string>());

        Assert.Equal(new[] { "GLIBC_2.14" }, libc.Weakened);
        Assert.Contains(libc.Blocked, b => b.Version == "GLIBC_2.2.5");
        Assert.All(libc.Blocked, b => Assert.StartsWith("GLIBC_", b.Version, StringComparison.Ordinal));
        Assert.False(absent.Changed);
        Assert.Empty(absent.AlreadyWeak);
        Assert.Empty(absent.Blocked);
        var after = ElfVersionPatcher.ReadVersionNeeds(bytes);
        Assert.All(after.Where(n => n.Version != "GLIBC_2.14"), n => Assert.False(n.IsWeak, n.ToString()));
    }

    [Fact]
    public void WeakenMissing_SyntheticLibrary_FollowsChainsAndPatchesOnlyAllowedVersions()
    {
        var elf = new SyntheticElf()
            .Symbol("printf", 2)
            .Symbol("marker", 4)
            .Symbol("_ZNSt6thread6_StateD2Ev", 5)
            .Symbol("unversioned", 1)
            .Needs("libc.so.6", ("GLIBC_2.2.5", 2, 0))
            .Needs("libstdc++.so.6", ("GLIBCXX_3.4", 3, 0), ("GLIBCXX_9.9", 4, 0), ("GLIBCXX_9.10", 5, 0), ("GLIBCXX_9.11", 6, ElfVersionPatcher.VerFlagWeak))
            .Build();

        var result = ElfVersionPatcher.WeakenMissing(elf, LibStdCxx, new[] { "GLIBCXX_3.4" }, new[] { "marker" });

        Assert.Equal(new[] { "GLIBCXX_9.9" }, result.Weakened);
        Assert.Equal(new[] { "GLIBCXX_9.11" }, result.AlreadyWeak);
        var blocked = Assert.Single(result.Blocked);
        Assert.Equal("GLIBCXX_9.10", blocked.Version);
        Assert.Equal(new[] { "_ZNSt6thread6_StateD2Ev" }, blocked.Symbols);

        var needs = ElfVersionPatcher.ReadVersionNeeds(elf).ToDictionary(n => n.Version);
        Assert.True(needs["GLIBCXX_9.9"].IsWeak);
        Assert.False(needs["GLIBCXX_9.10"].IsWeak);
        Assert.False(needs["GLIBC_2.2.5"].IsWeak);
        Assert.Equal(new[] { "printf" }, needs["GLIBC_2.2.5"].Symbols);
        Assert.Empty(needs["GLIBCXX_3.4"].Symbols);
    }

    [Fact]
    public void ReadDefinedVersions_SyntheticLibrary_ListsVersionsWithoutTheBase()
    {
        var elf = new SyntheticElf().Defines("libstdc++.so.6", new[] { "GLIBCXX_3.4", "GLIBCXX_3.4.30", "CXXABI_1.3" }).Build();

        var versions = ElfVersionPatcher.ReadDefinedVersions(elf);

        Assert.Equal(new[] { "CXXABI_1.3", "GLIBCXX_3.4", "GLIBCXX_3.4.30" }, versions.OrderBy(v => v, StringComparer.Ordinal));
    }

    [LinuxFact]
    public void ReadDefinedVersions_SystemLibStdCxx_HasTheBaseAndTheHighestVersionInTheFile()
    {
        var path = ElfVersionPatcher.FindSystemLibrary(LibStdCxx);
        Assert.NotNull(path);

        var versions = ElfVersionPatcher.ReadDefinedVersions(path);

        // Independent oracle: every GLIBCXX_3.4.N string in the file, as `strings | grep` would show.
        var text = Encoding.Latin1.GetString(File.ReadAllBytes(path));
        var highestInFile = Regex.Matches(text, @"GLIBCXX_3\.4\.(\d+)\0").Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Max();
        Assert.Contains("GLIBCXX_3.4", versions);
        Assert.Contains("CXXABI_1.3", versions);
        Assert.Contains($"GLIBCXX_3.4.{highestInFile}", versions);
        Assert.Equal($"GLIBCXX_3.4.{highestInFile}", ElfVersionPatcher.HighestVersion(versions, "GLIBCXX_"));
        Assert.DoesNotContain(LibStdCxx, versions);
    }

    [Theory]
    [InlineData(new[] { "GLIBCXX_3.4.9", "GLIBCXX_3.4.30", "GLIBCXX_3.4", "CXXABI_1.3.99" }, "GLIBCXX_3.4.30")]
    [InlineData(new[] { "GLIBCXX_3.4", "GLIBCXX_3.4.1" }, "GLIBCXX_3.4.1")]
    [InlineData(new[] { "GLIBCXX_TUNABLES", "CXXABI_1.3" }, null)]
    public void HighestVersion_ComparesNumerically(string[] versions, string? expected)
    {
        Assert.Equal(expected, ElfVersionPatcher.HighestVersion(versions, "GLIBCXX_"));
    }

    [LinuxFact]
    [SupportedOSPlatform("linux")]
    public void PatchFile_HardLinkedCopy_ReplacesTheLinkAndLeavesTheOriginalUntouched()
    {
        using var directory = new TemporaryDirectory();
        var original = directory.File("cache-libLibTorchSharp.so");
        var output = directory.File("libLibTorchSharp.so");
        File.Copy(TestEnvironment.LibTorchSharpPath, original);
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(original, mode);
        var lastWrite = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(original, lastWrite);
        var originalHash = SHA256.HashData(File.ReadAllBytes(original));
        Libc.Link(original, output);

        var result = ElfVersionPatcher.PatchFile(output, LibStdCxx, _gcc12Versions);

        Assert.Equal(new[] { TestEnvironment.Glibcxx32 }, result.Weakened);
        Assert.Equal(originalHash, SHA256.HashData(File.ReadAllBytes(original)));
        Assert.NotEqual(originalHash, SHA256.HashData(File.ReadAllBytes(output)));
        Assert.True(ElfVersionPatcher.ReadVersionNeeds(File.ReadAllBytes(output)).Single(n => n.Version == TestEnvironment.Glibcxx32).IsWeak);
        Assert.Equal(mode, File.GetUnixFileMode(output));
        Assert.Equal(lastWrite, File.GetLastWriteTimeUtc(output));
        Assert.False(File.Exists(output + ".tmp"));

        // Patching the patched file again touches nothing.
        var patchedHash = SHA256.HashData(File.ReadAllBytes(output));
        var again = ElfVersionPatcher.PatchFile(output, LibStdCxx, _gcc12Versions);
        Assert.False(again.Changed);
        Assert.Equal(patchedHash, SHA256.HashData(File.ReadAllBytes(output)));
    }

    [Fact]
    public void PatchFile_NotAnElfFile_ThrowsNamingThePathAndLeavesItAlone()
    {
        using var directory = new TemporaryDirectory();
        var path = directory.File("libLibTorchSharp.so");
        File.WriteAllText(path, "#!/bin/sh\necho this is not a shared library, but long enough to hold a header\n");
        var before = File.ReadAllBytes(path);

        var exception = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.PatchFile(path, LibStdCxx, _gcc12Versions));

        Assert.Contains(path, exception.Message, StringComparison.Ordinal);
        Assert.Contains("Not an ELF file", exception.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(63)]
    public void ReadVersionNeeds_TooShortForAHeader_ThrowsInvalidData(int length)
    {
        var bytes = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath).Take(length).ToArray();

        var exception = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadVersionNeeds(bytes));

        Assert.Contains("Not an ELF file", exception.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(300_000)]
    public void ReadVersionNeeds_TruncatedLibrary_ThrowsInvalidData(int length)
    {
        // The section header table sits at the end of the file, so any truncation cuts it off.
        var bytes = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath).Take(length).ToArray();

        var exception = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadVersionNeeds(bytes));

        Assert.Contains("truncated", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadVersionNeeds_Elf32_ThrowsUnsupported()
    {
        var bytes = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        bytes[4] = 1; // EI_CLASS: ELFCLASS32

        var exception = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadVersionNeeds(bytes));

        Assert.Contains("only ELF64 little-endian", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadVersionNeeds_StringOffsetOutsideTable_ThrowsInvalidData()
    {
        var bytes = File.ReadAllBytes(TestEnvironment.LibTorchSharpPath);
        var need = ElfVersionPatcher.ReadVersionNeeds(bytes).Single(n => n.Version == TestEnvironment.Glibcxx32);
        var nameOffset = (int)need.FlagsOffset + 4; // vna_name follows vna_flags and vna_other.
        BitConverter.GetBytes(uint.MaxValue).CopyTo(bytes, nameOffset);

        var exception = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadVersionNeeds(bytes));

        Assert.Contains("string offset", exception.Message, StringComparison.Ordinal);
    }
}
