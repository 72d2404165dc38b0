using System.Text.Json;
using Federated.Learning.Checkpoints;

namespace Federated.Coordinator.State;

/// <summary>
/// A directory of checkpoints: <c>round-000003.safetensors</c> holds the global model tensor by tensor (readable
/// by PyTorch) and the strategy state (<c>strategy.*</c>), with the run's metadata (and, for a differentially private
/// run, the privacy ledger, key <c>privacy_ledger</c>; older checkpoints simply lack it) in the header; <c>CURRENT</c>
/// names the latest. Both are written to a temporary name and renamed, so a crash at any point leaves the previous
/// checkpoint loadable. The two newest checkpoints are kept.
/// </summary>
public sealed class FileRoundStateStore(string directory) : IRoundStateStore
{
    private const string CurrentFile = "CURRENT";
    private const string StrategyPrefix = "strategy.";
    private const string PrivacyLedgerKey = "privacy_ledger";

    /// <summary>The directory.</summary>
    public string Directory { get; } = directory;

    /// <inheritdoc />
    public void Save(RoundCheckpoint checkpoint, IReadOnlyList<(string Name, long[] Shape, long Offset, long Length)> layout)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(layout);
        System.IO.Directory.CreateDirectory(Directory);
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
            ["round"] = checkpoint.Round.ToString(System.Globalization.CultureInfo.InvariantCulture),
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

        var fileName = $"round-{checkpoint.Round:D6}.safetensors";
        SafeTensorsFile.Write(Path.Combine(Directory, fileName), tensors, metadata);

        var current = Path.Combine(Directory, CurrentFile);
        var temp = current + ".tmp";
        File.WriteAllText(temp, fileName);
        File.Move(temp, current, overwrite: true);

        foreach (var old in System.IO.Directory.EnumerateFiles(Directory, "round-*.safetensors").Order(StringComparer.Ordinal).SkipLast(2))
        {
            File.Delete(old);
        }
    }

    /// <inheritdoc />
    public RoundCheckpoint? TryLoad()
    {
        var current = Path.Combine(Directory, CurrentFile);
        if (!File.Exists(current))
        {
            return null;
        }

        var fileName = File.ReadAllText(current).Trim();
        if (fileName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || !fileName.StartsWith("round-", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"'{current}' names '{fileName}', which is not a checkpoint file.");
        }

        var path = Path.Combine(Directory, fileName);
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
            Round = int.TryParse(Meta("round"), System.Globalization.CultureInfo.InvariantCulture, out var round) && round >= 0
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
}
