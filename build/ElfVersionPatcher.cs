// Marks symbol-version requirements of a Linux shared library as weak when the system's library does
// not define them and nothing but a marker symbol is bound to them.
//
// Why: TorchSharp 0.107.0's libLibTorchSharp.so was linked against GCC 13's libstdc++ and so records a
// requirement on GLIBCXX_3.4.32. The only symbol bound to that version is _ZSt21ios_base_library_initv, a
// marker that GCC 13 emits for every translation unit including <iostream> and that nothing calls. On a
// system with an older libstdc++ (Debian 12 has up to GLIBCXX_3.4.30) the dynamic loader refuses the
// whole library. Setting VER_FLG_WEAK on that one Elf64_Vernaux entry turns the refusal into a warning.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory (build/Federated.Native.targets), which
// compiles against netstandard 2.0 reference assemblies, and by tests/Federated.Build.Tests. It therefore
// uses only netstandard 2.0 APIs (no spans, no IReadOnlySet, no File.Move overwrite overload).
#nullable enable
// ArgumentNullException.ThrowIfNull does not exist in netstandard 2.0, which RoslynCodeTaskFactory compiles against.
#pragma warning disable CA1510

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Build.Framework;

namespace Federated.Build;

/// <summary>One Elf64_Vernaux entry of <c>.gnu.version_r</c>: a version that the library needs from a file.</summary>
public sealed class VersionNeed
{
    /// <summary>Creates the description of one version requirement.</summary>
    public VersionNeed(string file, string version, ushort flags, ushort index, long flagsOffset, IReadOnlyList<string> symbols)
    {
        File = file;
        Version = version;
        Flags = flags;
        Index = index;
        FlagsOffset = flagsOffset;
        Symbols = symbols;
    }

    /// <summary>The needed file (vn_file), for example <c>libstdc++.so.6</c>.</summary>
    public string File { get; }

    /// <summary>The version name (vna_name), for example <c>GLIBCXX_3.4.32</c>.</summary>
    public string Version { get; }

    /// <summary>vna_flags: <see cref="ElfVersionPatcher.VerFlagWeak"/> marks a weak requirement.</summary>
    public ushort Flags { get; }

    /// <summary>vna_other: the index that <c>.gnu.version</c> entries use to refer to this version.</summary>
    public ushort Index { get; }

    /// <summary>Offset of the two-byte vna_flags field in the file.</summary>
    public long FlagsOffset { get; }

    /// <summary>The dynamic symbols whose <c>.gnu.version</c> entry refers to this version.</summary>
    public IReadOnlyList<string> Symbols { get; }

    /// <summary>Whether the requirement is already weak (VER_FLG_WEAK set).</summary>
    public bool IsWeak => (Flags & ElfVersionPatcher.VerFlagWeak) != 0;

    /// <inheritdoc />
    public override string ToString() => $"{File}:{Version} (index {Index}, flags 0x{Flags:x}, {Symbols.Count} symbol(s))";
}

/// <summary>A missing version that could not be weakened because real symbols are bound to it.</summary>
public sealed class BlockedVersion
{
    /// <summary>Creates the description of one blocked version.</summary>
    public BlockedVersion(string version, IReadOnlyList<string> symbols)
    {
        Version = version;
        Symbols = symbols;
    }

    /// <summary>The version name, for example <c>GLIBCXX_3.4.32</c>.</summary>
    public string Version { get; }

    /// <summary>The bound symbols that are not in the allowed list: the library really needs them.</summary>
    public IReadOnlyList<string> Symbols { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Version} (needed by {string.Join(", ", Symbols)})";
}

/// <summary>What <see cref="ElfVersionPatcher.WeakenMissing"/> did, or found it could not do.</summary>
public sealed class PatchResult
{
    /// <summary>Creates a result.</summary>
    public PatchResult(IReadOnlyList<string> weakened, IReadOnlyList<string> alreadyWeak, IReadOnlyList<BlockedVersion> blocked)
    {
        Weakened = weakened;
        AlreadyWeak = alreadyWeak;
        Blocked = blocked;
    }

    /// <summary>Missing versions whose requirement was made weak by this call (the bytes changed).</summary>
    public IReadOnlyList<string> Weakened { get; }

    /// <summary>Missing versions whose requirement was weak already (an earlier patch, or the linker).</summary>
    public IReadOnlyList<string> AlreadyWeak { get; }

    /// <summary>Missing versions left as they were because symbols outside the allowed list are bound to them.</summary>
    public IReadOnlyList<BlockedVersion> Blocked { get; }

    /// <summary>Whether this call changed any byte.</summary>
    public bool Changed => Weakened.Count > 0;
}

/// <summary>
/// Reads and patches the GNU symbol-versioning sections of ELF64 little-endian shared libraries.
/// Pure functions over byte arrays, plus <see cref="PatchFile"/>, which replaces a file by rename.
/// </summary>
public static class ElfVersionPatcher
{
    /// <summary>VER_FLG_WEAK: a missing version is reported by the loader as a warning, not an error.</summary>
    public const ushort VerFlagWeak = 0x2;

    /// <summary>The only symbol bound to GLIBCXX_3.4.32 in libraries built by GCC 13: a marker nothing calls.</summary>
    public const string IosBaseLibraryInit = "_ZSt21ios_base_library_initv";

    /// <summary>The C++ runtime whose versions <see cref="WeakenMissingGlibcxxVersions"/> checks.</summary>
    public const string LibStdCxx = "libstdc++.so.6";

    /// <summary>The symbols that may be bound to a version which <see cref="WeakenMissing"/> weakens by default.</summary>
    public static IReadOnlyList<string> DefaultAllowedSymbols { get; } = new[] { IosBaseLibraryInit };

    private static readonly string[] _genericLibraryDirectories = { "/lib64", "/usr/lib64", "/lib", "/usr/lib" };

    private const ushort VerFlagBase = 0x1;
    private const uint ShtDynsym = 11;
    private const uint ShtStrtab = 3;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const int ElfHeaderSize = 64;
    private const int SectionHeaderSize = 64;
    private const int SymbolSize = 24;
    private const int VerneedSize = 16;
    private const int VernauxSize = 16;
    private const int VerdefSize = 20;
    private const int VerdauxSize = 8;
    private const ushort VersymIndexMask = 0x7fff;

    /// <summary>Reads the version names a shared library defines (<c>.gnu.version_d</c>), without its base (soname) entry.</summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ELF64 little-endian file.</exception>
    public static ISet<string> ReadDefinedVersions(string elfPath)
    {
        if (elfPath == null)
        {
            throw new ArgumentNullException(nameof(elfPath));
        }

        return WithPath(elfPath, () => ReadDefinedVersions(File.ReadAllBytes(elfPath)));
    }

    /// <summary>Reads the version names a shared library defines (<c>.gnu.version_d</c>), without its base (soname) entry.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian file.</exception>
    public static ISet<string> ReadDefinedVersions(byte[] elf)
    {
        var image = new ElfImage(elf);
        var versions = new HashSet<string>(StringComparer.Ordinal);
        foreach (var section in image.SectionsOfType(ShtGnuVerdef))
        {
            var strings = image.LinkedStringTable(section, ".gnu.version_d");
            var count = section.Info;
            var offset = section.Offset;
            var end = section.Offset + section.Size;
            for (uint i = 0; count == 0 || i < count; i++)
            {
                image.RequireRange(offset, VerdefSize, end, "Elf64_Verdef entry");
                var flags = image.U16(offset + 2);
                var auxOffset = image.U32(offset + 12);
                var next = image.U32(offset + 16);
                if ((flags & VerFlagBase) == 0)
                {
                    // The first Elf64_Verdaux holds the version's own name; later ones name its parents.
                    var aux = offset + auxOffset;
                    image.RequireRange(aux, VerdauxSize, end, "Elf64_Verdaux entry");
                    versions.Add(image.String(strings, image.U32(aux)));
                }

                if (next == 0)
                {
                    break;
                }

                offset += next;
            }
        }

        return versions;
    }

    /// <summary>
    /// Lists every version requirement (<c>.gnu.version_r</c>) with the dynamic symbols bound to it through
    /// <c>.gnu.version</c>. Useful for tests and diagnostics.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian file.</exception>
    public static IReadOnlyList<VersionNeed> ReadVersionNeeds(byte[] elf)
    {
        var image = new ElfImage(elf);
        var symbolsByIndex = ReadSymbolsByVersionIndex(image);
        var needs = new List<VersionNeed>();
        foreach (var section in image.SectionsOfType(ShtGnuVerneed))
        {
            var strings = image.LinkedStringTable(section, ".gnu.version_r");
            var count = section.Info;
            var offset = section.Offset;
            var end = section.Offset + section.Size;
            for (uint i = 0; count == 0 || i < count; i++)
            {
                image.RequireRange(offset, VerneedSize, end, "Elf64_Verneed entry");
                var auxCount = image.U16(offset + 2);
                var file = image.String(strings, image.U32(offset + 4));
                var auxOffset = image.U32(offset + 8);
                var next = image.U32(offset + 12);

                var aux = offset + auxOffset;
                for (var j = 0; j < auxCount; j++)
                {
                    image.RequireRange(aux, VernauxSize, end, "Elf64_Vernaux entry");
                    var flags = image.U16(aux + 4);
                    var index = (ushort)(image.U16(aux + 6) & VersymIndexMask);
                    var name = image.String(strings, image.U32(aux + 8));
                    symbolsByIndex.TryGetValue(index, out var symbols);
                    needs.Add(new VersionNeed(file, name, flags, index, (long)(aux + 4), (IReadOnlyList<string>?)symbols ?? Array.Empty<string>()));

                    var auxNext = image.U32(aux + 12);
                    if (auxNext == 0)
                    {
                        break;
                    }

                    aux += auxNext;
                }

                if (next == 0)
                {
                    break;
                }

                offset += next;
            }
        }

        return needs;
    }

    /// <summary>
    /// For each version that the library needs from <paramref name="neededFile"/> and that is not in
    /// <paramref name="availableVersions"/>: when every dynamic symbol bound to it is in
    /// <paramref name="allowedSymbols"/>, sets VER_FLG_WEAK in its vna_flags, in place in
    /// <paramref name="elf"/>; otherwise leaves it and reports it as blocked. No other byte changes.
    /// </summary>
    /// <param name="elf">The library's bytes; patched in place.</param>
    /// <param name="neededFile">The needed file as recorded in vn_file, for example <c>libstdc++.so.6</c>.</param>
    /// <param name="availableVersions">The versions the system's copy of <paramref name="neededFile"/> defines.</param>
    /// <param name="allowedSymbols">Symbols that may be bound to a weakened version; null means <see cref="DefaultAllowedSymbols"/>.</param>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian file.</exception>
    public static PatchResult WeakenMissing(byte[] elf, string neededFile, IEnumerable<string> availableVersions, IEnumerable<string>? allowedSymbols = null)
    {
        if (elf == null)
        {
            throw new ArgumentNullException(nameof(elf));
        }

        if (neededFile == null)
        {
            throw new ArgumentNullException(nameof(neededFile));
        }

        if (availableVersions == null)
        {
            throw new ArgumentNullException(nameof(availableVersions));
        }

        var available = new HashSet<string>(availableVersions, StringComparer.Ordinal);
        var allowed = new HashSet<string>(allowedSymbols ?? DefaultAllowedSymbols, StringComparer.Ordinal);
        var weakened = new List<string>();
        var alreadyWeak = new List<string>();
        var blocked = new List<BlockedVersion>();

        foreach (var need in ReadVersionNeeds(elf))
        {
            if (!string.Equals(need.File, neededFile, StringComparison.Ordinal) || available.Contains(need.Version))
            {
                continue;
            }

            if (need.IsWeak)
            {
                alreadyWeak.Add(need.Version);
                continue;
            }

            var needed = need.Symbols.Where(symbol => !allowed.Contains(symbol)).ToList();
            if (needed.Count > 0)
            {
                blocked.Add(new BlockedVersion(need.Version, needed));
                continue;
            }

            var flags = (ushort)(need.Flags | VerFlagWeak);
            elf[need.FlagsOffset] = (byte)flags;
            elf[need.FlagsOffset + 1] = (byte)(flags >> 8);
            weakened.Add(need.Version);
        }

        return new PatchResult(weakened, alreadyWeak, blocked);
    }

    /// <summary>
    /// Runs <see cref="WeakenMissing"/> on a file. When bytes change, writes a copy next to it and renames the
    /// copy over <paramref name="path"/>: the file is never written in place, because it may be a hard link
    /// into the NuGet cache, and the rename only replaces this directory entry. The copy keeps the original's
    /// unix mode and last-write time, so MSBuild's unchanged-file checks do not copy the original back on
    /// every build.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ELF64 little-endian file.</exception>
    public static PatchResult PatchFile(string path, string neededFile, IEnumerable<string> availableVersions, IEnumerable<string>? allowedSymbols = null)
    {
        if (path == null)
        {
            throw new ArgumentNullException(nameof(path));
        }

        var bytes = File.ReadAllBytes(path);
        var result = WithPath(path, () => WeakenMissing(bytes, neededFile, availableVersions, allowedSymbols));
        if (!result.Changed)
        {
            return result;
        }

        var lastWrite = File.GetLastWriteTimeUtc(path);
        var temporary = path + ".tmp";
        try
        {
            // Delete first: a stale temporary file could itself be a hard link, and copying over it would
            // write through the link.
            File.Delete(temporary);

            // File.Copy gives a new inode with the original's mode; the patched bytes then go into that inode.
            File.Copy(path, temporary, overwrite: false);
            using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes, 0, bytes.Length);
                stream.SetLength(bytes.Length);
            }

            File.SetLastWriteTimeUtc(temporary, lastWrite);

            // On Unix, File.Replace with no backup is rename(2): atomic, and it detaches path from any hard link.
            File.Replace(temporary, path, destinationBackupFileName: null);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }

        return result;
    }

    /// <summary>
    /// Finds the system's copy of a shared library by soname in the standard library directories for the
    /// current architecture. Returns null when there is none (or on a platform other than Linux).
    /// </summary>
    public static string? FindSystemLibrary(string soname)
    {
        if (string.IsNullOrEmpty(soname))
        {
            throw new ArgumentException("A soname such as libstdc++.so.6 is required.", nameof(soname));
        }

        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            return null;
        }

        string? triplet;
        ushort? machine;
        switch (RuntimeInformation.ProcessArchitecture)
        {
            case Architecture.X64:
                triplet = "x86_64-linux-gnu";
                machine = 62; // EM_X86_64
                break;
            case Architecture.Arm64:
                triplet = "aarch64-linux-gnu";
                machine = 183; // EM_AARCH64
                break;
            default:
                triplet = null; // Only ELF64 is parsed: 32-bit processes have nothing to patch.
                machine = null;
                break;
        }

        var directories = new List<string>();
        if (triplet != null)
        {
            directories.Add("/lib/" + triplet);
            directories.Add("/usr/lib/" + triplet);
        }

        directories.AddRange(_genericLibraryDirectories);
        foreach (var directory in directories)
        {
            var candidate = Path.Combine(directory, soname);
            if (File.Exists(candidate) && IsElf64ForMachine(candidate, machine))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>
    /// The highest of the versions that start with <paramref name="prefix"/> (for example <c>GLIBCXX_</c>),
    /// comparing dot-separated numbers numerically, so GLIBCXX_3.4.30 is above GLIBCXX_3.4.9. Null when none match.
    /// </summary>
    public static string? HighestVersion(IEnumerable<string> versions, string prefix)
    {
        if (versions == null)
        {
            throw new ArgumentNullException(nameof(versions));
        }

        string? best = null;
        int[]? bestParts = null;
        foreach (var version in versions)
        {
            if (!version.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var parts = ParseNumbers(version.Substring(prefix.Length));
            if (parts != null && (bestParts == null || CompareNumbers(parts, bestParts) > 0))
            {
                best = version;
                bestParts = parts;
            }
        }

        return best;
    }

    private static int[]? ParseNumbers(string text)
    {
        var pieces = text.Split('.');
        var numbers = new int[pieces.Length];
        for (var i = 0; i < pieces.Length; i++)
        {
            if (!int.TryParse(pieces[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i]))
            {
                return null;
            }
        }

        return numbers;
    }

    private static int CompareNumbers(int[] left, int[] right)
    {
        for (var i = 0; i < Math.Max(left.Length, right.Length); i++)
        {
            var l = i < left.Length ? left[i] : 0;
            var r = i < right.Length ? right[i] : 0;
            if (l != r)
            {
                return l.CompareTo(r);
            }
        }

        return left.Length.CompareTo(right.Length);
    }

    private static bool IsElf64ForMachine(string path, ushort? machine)
    {
        var header = new byte[ElfHeaderSize];
        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Read(header, 0, header.Length) != header.Length)
            {
                return false;
            }
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }

        return header[0] == 0x7f && header[1] == (byte)'E' && header[2] == (byte)'L' && header[3] == (byte)'F'
            && header[4] == 2 && header[5] == 1
            && (machine == null || (header[18] | (header[19] << 8)) == machine.Value);
    }

    /// <summary>Maps each version index (from <c>.gnu.version</c>) to the names of the dynamic symbols that use it.</summary>
    private static Dictionary<ushort, List<string>> ReadSymbolsByVersionIndex(ElfImage image)
    {
        var result = new Dictionary<ushort, List<string>>();
        var versym = image.SectionsOfType(ShtGnuVersym).FirstOrDefault();
        if (versym == null)
        {
            // Without .gnu.version nothing says which symbols a needed version binds: refuse rather than guess.
            if (image.SectionsOfType(ShtGnuVerneed).Any())
            {
                throw new InvalidDataException("Malformed ELF file: it has .gnu.version_r but no .gnu.version.");
            }

            return result;
        }

        var dynsym = image.Section(versym.Link, ".gnu.version's sh_link");
        if (dynsym.Type != ShtDynsym)
        {
            throw new InvalidDataException($".gnu.version links to section {versym.Link}, which is not the dynamic symbol table.");
        }

        var strings = image.LinkedStringTable(dynsym, ".dynsym");
        var count = dynsym.Size / SymbolSize;
        if (versym.Size < count * 2)
        {
            throw new InvalidDataException($".gnu.version has {versym.Size / 2} entries but .dynsym has {count} symbols.");
        }

        for (ulong i = 1; i < count; i++)
        {
            var index = (ushort)(image.U16(versym.Offset + (i * 2)) & VersymIndexMask);
            if (index < 2)
            {
                continue; // 0: local, 1: global (unversioned).
            }

            var name = image.String(strings, image.U32(dynsym.Offset + (i * SymbolSize)));
            if (!result.TryGetValue(index, out var names))
            {
                names = new List<string>();
                result.Add(index, names);
            }

            names.Add(name);
        }

        return result;
    }

    private static T WithPath<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (InvalidDataException exception)
        {
            throw new InvalidDataException($"{path}: {exception.Message}", exception);
        }
    }

    /// <summary>One section header.</summary>
    private sealed class Section
    {
        public Section(int number, uint type, ulong offset, ulong size, uint link, uint info)
        {
            Number = number;
            Type = type;
            Offset = offset;
            Size = size;
            Link = link;
            Info = info;
        }

        public int Number { get; }

        public uint Type { get; }

        public ulong Offset { get; }

        public ulong Size { get; }

        public uint Link { get; }

        public uint Info { get; }
    }

    /// <summary>A validated view of an ELF64 little-endian file's section headers, with bounds-checked reads.</summary>
    private sealed class ElfImage
    {
        private readonly byte[] _bytes;
        private readonly List<Section> _sections = new();

        public ElfImage(byte[] bytes)
        {
            _bytes = bytes ?? throw new ArgumentNullException(nameof(bytes));
            if (bytes.Length < ElfHeaderSize || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
            {
                throw new InvalidDataException($"Not an ELF file: the {bytes.Length}-byte input does not start with a 64-byte header and the magic 0x7F 'E' 'L' 'F'.");
            }

            if (bytes[4] != 2 || bytes[5] != 1)
            {
                throw new InvalidDataException($"Unsupported ELF file: only ELF64 little-endian is supported, this one has class {bytes[4]} and data encoding {bytes[5]}.");
            }

            var sectionHeaderOffset = U64(0x28);
            var entrySize = U16(0x3a);
            ulong sectionCount = U16(0x3c);
            uint namesIndex = U16(0x3e);
            if (sectionHeaderOffset == 0)
            {
                throw new InvalidDataException("Malformed ELF file: it has no section header table (e_shoff is 0).");
            }

            if (entrySize < SectionHeaderSize)
            {
                throw new InvalidDataException($"Malformed ELF file: e_shentsize is {entrySize}, less than the {SectionHeaderSize} bytes of an Elf64_Shdr.");
            }

            RequireRange(sectionHeaderOffset, SectionHeaderSize, (ulong)bytes.Length, "section header 0");
            if (sectionCount == 0)
            {
                sectionCount = U64(sectionHeaderOffset + 32); // Extended numbering: the count is in section 0's sh_size.
            }

            if (namesIndex == 0xffff)
            {
                namesIndex = U32(sectionHeaderOffset + 40); // SHN_XINDEX: the index is in section 0's sh_link.
            }

            if (sectionCount > (ulong)bytes.Length / entrySize)
            {
                throw new InvalidDataException($"Malformed ELF file: {sectionCount} section headers of {entrySize} bytes cannot fit in {bytes.Length} bytes.");
            }

            RequireRange(sectionHeaderOffset, sectionCount * entrySize, (ulong)bytes.Length, "section header table");
            if (namesIndex >= sectionCount)
            {
                throw new InvalidDataException($"Malformed ELF file: e_shstrndx {namesIndex} is not below the section count {sectionCount}.");
            }

            for (var i = 0; i < (int)sectionCount; i++)
            {
                var header = sectionHeaderOffset + ((ulong)i * entrySize);
                var type = U32(header + 4);
                var offset = U64(header + 24);
                var size = U64(header + 32);
                if (type != 8 && type != 0) // SHT_NOBITS and SHT_NULL occupy no bytes of the file.
                {
                    RequireRange(offset, size, (ulong)bytes.Length, $"section {i} (type 0x{type:x})");
                }

                _sections.Add(new Section(i, type, offset, size, U32(header + 40), U32(header + 44)));
            }
        }

        public IEnumerable<Section> SectionsOfType(uint type) => _sections.Where(section => section.Type == type);

        public Section Section(uint number, string what)
        {
            if (number >= (uint)_sections.Count)
            {
                throw new InvalidDataException($"Malformed ELF file: {what} refers to section {number}, but there are only {_sections.Count}.");
            }

            return _sections[(int)number];
        }

        public Section LinkedStringTable(Section section, string what)
        {
            var strings = Section(section.Link, what + "'s sh_link");
            if (strings.Type != ShtStrtab)
            {
                throw new InvalidDataException($"Malformed ELF file: {what} links to section {strings.Number}, which is not a string table.");
            }

            return strings;
        }

        public string String(Section table, uint offset)
        {
            if (offset >= table.Size)
            {
                throw new InvalidDataException($"Malformed ELF file: string offset {offset} lies outside its {table.Size}-byte string table (section {table.Number}).");
            }

            var start = (int)(table.Offset + offset);
            var end = (int)(table.Offset + table.Size);
            var terminator = Array.IndexOf(_bytes, (byte)0, start, end - start);
            if (terminator < 0)
            {
                throw new InvalidDataException($"Malformed ELF file: the string at offset {offset} of section {table.Number} is not NUL-terminated.");
            }

            return Encoding.UTF8.GetString(_bytes, start, terminator - start);
        }

        public void RequireRange(ulong offset, ulong length, ulong limit, string what)
        {
            if (offset > limit || length > limit - offset)
            {
                throw new InvalidDataException($"Malformed or truncated ELF file: {what} at offset {offset} with {length} bytes runs past byte {limit} (the file has {_bytes.Length} bytes).");
            }
        }

        public ushort U16(ulong offset)
        {
            RequireRange(offset, 2, (ulong)_bytes.Length, "a 2-byte field");
            var i = (int)offset;
            return (ushort)(_bytes[i] | (_bytes[i + 1] << 8));
        }

        public uint U32(ulong offset)
        {
            RequireRange(offset, 4, (ulong)_bytes.Length, "a 4-byte field");
            var i = (int)offset;
            return (uint)(_bytes[i] | (_bytes[i + 1] << 8) | (_bytes[i + 2] << 16) | (_bytes[i + 3] << 24));
        }

        public ulong U64(ulong offset) => U32(offset) | ((ulong)U32(offset + 4) << 32);
    }
}

/// <summary>
/// MSBuild task: in copies of native libraries in an output or publish folder, marks as weak each libstdc++
/// version requirement that the system's libstdc++ lacks and that binds only the allowed marker symbols.
/// Does nothing on systems other than Linux or whose libstdc++ has every needed version.
/// </summary>
public sealed class WeakenMissingGlibcxxVersions : Microsoft.Build.Utilities.Task
{
    /// <summary>The library copies to patch (never the NuGet cache itself: patched files are replaced by rename).</summary>
    [Required]
#pragma warning disable CA1819 // MSBuild task parameters are arrays by contract.
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>Symbols that may be bound to a weakened version; defaults to <see cref="ElfVersionPatcher.DefaultAllowedSymbols"/>.</summary>
    public string[]? AllowedSymbols { get; set; }
#pragma warning restore CA1819

    /// <summary>The system libstdc++ to compare against; found in the standard library directories when empty.</summary>
    public string? SystemLibrary { get; set; }

    /// <inheritdoc />
    public override bool Execute()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Log.LogMessage(MessageImportance.Low, "Federated: not on Linux, native libraries are left as they are.");
            return true;
        }

        var systemLibrary = string.IsNullOrEmpty(SystemLibrary) ? ElfVersionPatcher.FindSystemLibrary(ElfVersionPatcher.LibStdCxx) : SystemLibrary;
        if (systemLibrary == null)
        {
            Log.LogMessage(MessageImportance.High, $"Federated: no system {ElfVersionPatcher.LibStdCxx} found, native libraries are left as they are.");
            return true;
        }

        try
        {
            var available = ElfVersionPatcher.ReadDefinedVersions(systemLibrary);
            var highest = ElfVersionPatcher.HighestVersion(available, "GLIBCXX_") ?? "no GLIBCXX version";
            var allowed = AllowedSymbols ?? (IEnumerable<string>)ElfVersionPatcher.DefaultAllowedSymbols;
            foreach (var item in Files)
            {
                var path = item.ItemSpec;
                var result = ElfVersionPatcher.PatchFile(path, ElfVersionPatcher.LibStdCxx, available, allowed);
                foreach (var version in result.Weakened)
                {
                    Log.LogMessage(MessageImportance.High, $"Federated: marked {version} weak in {path} (system libstdc++ {systemLibrary} has up to {highest}).");
                }

                foreach (var version in result.AlreadyWeak)
                {
                    Log.LogMessage(MessageImportance.Low, $"Federated: {version} is already weak in {path}.");
                }

                foreach (var blocked in result.Blocked)
                {
                    Log.LogError(
                        $"Federated: {path} needs {blocked.Version} from {ElfVersionPatcher.LibStdCxx}, which the system's {systemLibrary} (up to {highest}) lacks, " +
                        $"and uses real symbols of it: {string.Join(", ", blocked.Symbols)}. Install a newer libstdc++ (GCC 13 or later) or set FederatedPatchNativeLibraries=false.");
                }

                if (result.Weakened.Count == 0 && result.AlreadyWeak.Count == 0 && result.Blocked.Count == 0)
                {
                    Log.LogMessage(MessageImportance.Low, $"Federated: {path} needs no libstdc++ version that {systemLibrary} lacks.");
                }
            }
        }
        catch (Exception exception) when (exception is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            Log.LogError($"Federated: could not patch native libraries: {exception.Message}");
        }

        return !Log.HasLoggedErrors;
    }
}
