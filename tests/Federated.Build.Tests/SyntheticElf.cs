using System.Text;

namespace Federated.Build.Tests;

/// <summary>
/// Writes minimal ELF64 little-endian files with the sections the patcher reads: .dynstr, .dynsym, .gnu.version,
/// .gnu.version_r, optionally .gnu.version_d, and .shstrtab. Enough to test cases that no real library shows.
/// </summary>
internal sealed class SyntheticElf
{
    private readonly List<(string Name, ushort Version)> _symbols = new();
    private readonly List<(string File, List<(string Name, ushort Index, ushort Flags)> Versions)> _needs = new();
    private readonly List<string> _definitions = new();
    private string _soname = "libsynthetic.so.1";

    /// <summary>Adds a dynamic symbol whose .gnu.version entry is <paramref name="version"/> (0 local, 1 global, 2+ a version index).</summary>
    public SyntheticElf Symbol(string name, ushort version)
    {
        _symbols.Add((name, version));
        return this;
    }

    /// <summary>Adds an Elf64_Verneed for <paramref name="file"/> with the given Elf64_Vernaux entries.</summary>
    public SyntheticElf Needs(string file, params (string Name, ushort Index, ushort Flags)[] versions)
    {
        _needs.Add((file, versions.ToList()));
        return this;
    }

    /// <summary>Adds .gnu.version_d: a base entry for <paramref name="soname"/> and one entry per version.</summary>
    public SyntheticElf Defines(string soname, IEnumerable<string> versions)
    {
        _soname = soname;
        _definitions.AddRange(versions);
        return this;
    }

    public byte[] Build()
    {
        var dynstr = new StringTable();
        var output = new MemoryStream();
        var writer = new BinaryWriter(output);
        writer.Write(new byte[64]); // ELF header, written last.

        // .dynsym: the null symbol, then ours.
        var symbolNames = _symbols.Select(symbol => dynstr.Add(symbol.Name)).ToList();
        var dynsym = new MemoryStream();
        var symbols = new BinaryWriter(dynsym);
        symbols.Write(new byte[24]);
        foreach (var name in symbolNames)
        {
            symbols.Write(name);          // st_name
            symbols.Write((byte)0x12);    // st_info: STB_GLOBAL, STT_FUNC
            symbols.Write((byte)0);       // st_other
            symbols.Write((ushort)0);     // st_shndx: undefined
            symbols.Write(0UL);           // st_value
            symbols.Write(0UL);           // st_size
        }

        var versym = new MemoryStream();
        var versions = new BinaryWriter(versym);
        versions.Write((ushort)0);
        foreach (var symbol in _symbols)
        {
            versions.Write(symbol.Version);
        }

        var verneed = new MemoryStream();
        var needs = new BinaryWriter(verneed);
        for (var i = 0; i < _needs.Count; i++)
        {
            var (file, auxiliaries) = _needs[i];
            var size = 16 + (16 * auxiliaries.Count);
            needs.Write((ushort)1);                                      // vn_version
            needs.Write((ushort)auxiliaries.Count);                      // vn_cnt
            needs.Write(dynstr.Add(file));                               // vn_file
            needs.Write(16u);                                            // vn_aux
            needs.Write(i == _needs.Count - 1 ? 0u : (uint)size);        // vn_next
            for (var j = 0; j < auxiliaries.Count; j++)
            {
                needs.Write(0u);                                         // vna_hash (not checked)
                needs.Write(auxiliaries[j].Flags);                       // vna_flags
                needs.Write(auxiliaries[j].Index);                       // vna_other
                needs.Write(dynstr.Add(auxiliaries[j].Name));            // vna_name
                needs.Write(j == auxiliaries.Count - 1 ? 0u : 16u);      // vna_next
            }
        }

        var verdef = new MemoryStream();
        var definitions = new BinaryWriter(verdef);
        if (_definitions.Count > 0)
        {
            var names = new[] { _soname }.Concat(_definitions).ToList();
            for (var i = 0; i < names.Count; i++)
            {
                definitions.Write((ushort)1);                            // vd_version
                definitions.Write((ushort)(i == 0 ? 1 : 0));             // vd_flags: VER_FLG_BASE on the first
                definitions.Write((ushort)(i + 1));                      // vd_ndx
                definitions.Write((ushort)1);                            // vd_cnt
                definitions.Write(0u);                                   // vd_hash (not checked)
                definitions.Write(20u);                                  // vd_aux
                definitions.Write(i == names.Count - 1 ? 0u : 28u);      // vd_next
                definitions.Write(dynstr.Add(names[i]));                 // vda_name
                definitions.Write(0u);                                   // vda_next
            }
        }

        var shstrtab = new StringTable();
        var sections = new List<(uint Name, uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntrySize)>
        {
            (0, 0, 0, 0, 0, 0, 0),
        };

        ulong Place(byte[] bytes)
        {
            while (output.Length % 8 != 0)
            {
                writer.Write((byte)0);
            }

            var offset = (ulong)output.Length;
            writer.Write(bytes);
            return offset;
        }

        var dynstrBytes = dynstr.ToArray();
        sections.Add((shstrtab.Add(".dynstr"), 3, Place(dynstrBytes), (ulong)dynstrBytes.Length, 0, 0, 0));
        sections.Add((shstrtab.Add(".dynsym"), 11, Place(dynsym.ToArray()), (ulong)dynsym.Length, 1, 1, 24));
        sections.Add((shstrtab.Add(".gnu.version"), 0x6fffffff, Place(versym.ToArray()), (ulong)versym.Length, 2, 0, 2));
        sections.Add((shstrtab.Add(".gnu.version_r"), 0x6ffffffe, Place(verneed.ToArray()), (ulong)verneed.Length, 1, (uint)_needs.Count, 0));
        if (_definitions.Count > 0)
        {
            sections.Add((shstrtab.Add(".gnu.version_d"), 0x6ffffffd, Place(verdef.ToArray()), (ulong)verdef.Length, 1, (uint)(_definitions.Count + 1), 0));
        }

        var shstrtabName = shstrtab.Add(".shstrtab");
        var shstrtabBytes = shstrtab.ToArray();
        sections.Add((shstrtabName, 3, Place(shstrtabBytes), (ulong)shstrtabBytes.Length, 0, 0, 0));

        var sectionHeaders = Place(Array.Empty<byte>());
        foreach (var section in sections)
        {
            writer.Write(section.Name);
            writer.Write(section.Type);
            writer.Write(0UL);              // sh_flags
            writer.Write(0UL);              // sh_addr
            writer.Write(section.Offset);
            writer.Write(section.Size);
            writer.Write(section.Link);
            writer.Write(section.Info);
            writer.Write(8UL);              // sh_addralign
            writer.Write(section.EntrySize);
        }

        // ELF header.
        output.Position = 0;
        writer.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0 });
        writer.Write(new byte[8]);
        writer.Write((ushort)3);            // e_type: ET_DYN
        writer.Write((ushort)62);           // e_machine: EM_X86_64
        writer.Write(1u);                   // e_version
        writer.Write(0UL);                  // e_entry
        writer.Write(0UL);                  // e_phoff
        writer.Write(sectionHeaders);       // e_shoff
        writer.Write(0u);                   // e_flags
        writer.Write((ushort)64);           // e_ehsize
        writer.Write((ushort)56);           // e_phentsize
        writer.Write((ushort)0);            // e_phnum
        writer.Write((ushort)64);           // e_shentsize
        writer.Write((ushort)sections.Count);
        writer.Write((ushort)(sections.Count - 1));
        writer.Flush();
        return output.ToArray();
    }

    /// <summary>A NUL-separated string table that starts with the empty string.</summary>
    private sealed class StringTable
    {
        private readonly List<byte> _bytes = new() { 0 };
        private readonly Dictionary<string, uint> _offsets = new(StringComparer.Ordinal);

        public uint Add(string value)
        {
            if (!_offsets.TryGetValue(value, out var offset))
            {
                offset = (uint)_bytes.Count;
                _bytes.AddRange(Encoding.UTF8.GetBytes(value));
                _bytes.Add(0);
                _offsets.Add(value, offset);
            }

            return offset;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
