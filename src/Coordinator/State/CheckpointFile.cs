using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Federated.Learning.Checkpoints;

namespace Federated.Coordinator.State;

/// <summary>
/// One checkpoint file, <c>round-000003.safetensors</c>: the global model tensor by tensor (readable by PyTorch), the
/// strategy state (<c>strategy.*</c>) and the run's metadata in the header (with the privacy ledger under
/// <c>privacy_ledger</c> for a differentially private run). Written durably: a temporary file in the same directory,
/// flushed to disk, renamed over the final name, then the directory itself synced so that the rename survives a
/// power cut. A crash at any point leaves either no file or a complete one under the final name; a torn temporary file
/// (<c>.round-*.tmp</c>) is never read and is deleted by <see cref="DeleteTemporaryFiles"/>.
/// </summary>
internal static partial class CheckpointFile
{
    private const string StrategyPrefix = "strategy.";
    private const string PrivacyLedgerKey = "privacy_ledger";

    /// <summary>The file name of round <paramref name="round"/>'s checkpoint.</summary>
    public static string NameOf(int round) => $"round-{round:D6}.safetensors";

    /// <summary>Writes <paramref name="checkpoint"/> to <paramref name="path"/> durably (see the class remarks).</summary>
    public static void Write(string path, RoundCheckpoint checkpoint, IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> layout)
    {
        var tensors = new List<SafeTensor>();
        foreach (var (name, shape, offset, length) in layout)
        {
            tensors.Add(SafeTensor.FromSingles(name, shape, checkpoint.Global.AsSpan((int)offset, (int)length)));
        }

        foreach (var (name, values) in checkpoint.StrategyState)
        {
            tensors.Add(SafeTensor.FromSingles(StrategyPrefix + name, [values.Length], values));
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["run_id"] = checkpoint.RunId,
            ["round"] = checkpoint.Round.ToString(CultureInfo.InvariantCulture),
            ["model"] = checkpoint.Model,
            ["layout"] = checkpoint.LayoutFingerprint,
            ["strategy"] = checkpoint.Strategy,
            ["history"] = JsonSerializer.Serialize(checkpoint.History),
            ["tensors"] = string.Join(',', layout.Select(l => l.Name)),
        };
        if (checkpoint.PrivacyLedger is { } ledger)
        {
            metadata[PrivacyLedgerKey] = ledger;
        }

        // SafeTensorsFile.Write: a temporary file, flushed with fsync, renamed over the final name.
        SafeTensorsFile.Write(path, tensors, metadata);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Reads the checkpoint at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a complete checkpoint.</exception>
    public static RoundCheckpoint Read(string path)
    {
        var content = SafeTensorsFile.Read(path);
        string Meta(string key) => content.Metadata.TryGetValue(key, out var value)
            ? value
            : throw new InvalidDataException($"Checkpoint '{path}' lacks the '{key}' metadata.");

        var names = Meta("tensors").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var global = new List<float>();
        foreach (var name in names)
        {
            if (!content.TryGet(name, out var tensor))
            {
                throw new InvalidDataException($"Checkpoint '{path}' lacks the model tensor '{name}'.");
            }

            global.AddRange(tensor.ToSingles());
        }

        var strategyState = content.Tensors
            .Where(t => t.Name.StartsWith(StrategyPrefix, StringComparison.Ordinal))
            .ToDictionary(t => t.Name[StrategyPrefix.Length..], t => t.ToSingles(), StringComparer.Ordinal);
        List<Dictionary<string, string>> history;
        try
        {
            history = JsonSerializer.Deserialize<List<Dictionary<string, string>>>(Meta("history")) ?? [];
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Checkpoint '{path}' has unreadable round history: {e.Message}", e);
        }

        return new RoundCheckpoint
        {
            RunId = Meta("run_id"),
            Round = int.TryParse(Meta("round"), CultureInfo.InvariantCulture, out var round) && round >= 0
                ? round
                : throw new InvalidDataException($"Checkpoint '{path}' has an invalid round number."),
            Model = Meta("model"),
            LayoutFingerprint = Meta("layout"),
            Global = global.ToArray(),
            Strategy = Meta("strategy"),
            StrategyState = strategyState,
            History = history,
            PrivacyLedger = content.Metadata.GetValueOrDefault(PrivacyLedgerKey),
        };
    }

    /// <summary>Deletes all but the <paramref name="keep"/> newest checkpoint files in <paramref name="directory"/>.</summary>
    public static void Prune(string directory, int keep)
    {
        foreach (var old in Directory.EnumerateFiles(directory, "round-*.safetensors").Order(StringComparer.Ordinal).SkipLast(keep))
        {
            File.Delete(old);
        }
    }

    /// <summary>Deletes the temporary files a crash mid-write left behind (they are never read).</summary>
    /// <returns>How many were deleted.</returns>
    public static int DeleteTemporaryFiles(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return 0;
        }

        var deleted = 0;
        foreach (var temp in Directory.EnumerateFiles(directory, ".round-*.tmp"))
        {
            File.Delete(temp);
            deleted++;
        }

        return deleted;
    }

    /// <summary>
    /// Flushes <paramref name="directory"/>'s entries (a rename inside it) to disk: <c>fsync</c> on the directory on
    /// Linux; elsewhere the call does nothing (Windows has no equivalent; macOS would need <c>F_FULLFSYNC</c>).
    /// </summary>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"Could not open directory '{directory}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc.so.6", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
