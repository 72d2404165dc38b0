using System.Text.Json;
using System.Text.Json.Serialization;
using Federated.Learning.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// Everything an agent must remember between experiences, and across restarts: the experience counter, the classes
/// seen, the EWC terms (Fisher diagonals and anchors, per experience or the one online term), the replay buffer
/// (examples, labels, experience ids, seen-counters) and the LwF teacher's weights. It owns its tensors.
/// <see cref="Save"/> writes one safetensors file of named tensors (readable by PyTorch) and then, atomically, a
/// small JSON manifest that names it: the manifest's replacement is the commit point, so a crash leaves either the old
/// state or the new one. Tensor names: <c>ewc/{k}/fisher/{parameter}</c>, <c>ewc/{k}/anchor/{parameter}</c>,
/// <c>replay/features</c>, <c>replay/labels</c>, <c>replay/experiences</c>, <c>replay/seen</c>,
/// <c>lwf/teacher/{parameter}</c> — see <see cref="NamedTensors"/>.
/// </summary>
public sealed class ContinualState : IDisposable
{
    /// <summary>The manifest's file name inside the state directory.</summary>
    public const string ManifestFile = "continual.json";

    private const int FormatVersion = 1;
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    private readonly List<EwcTerm> _ewc = [];
    private Dictionary<string, Tensor>? _teacher;

    /// <summary>Experiences completed so far (the index of the one being learned).</summary>
    public int Experience { get; set; }

    /// <summary>Classes (output units) seen in completed experiences.</summary>
    public SortedSet<int> SeenClasses { get; } = [];

    /// <summary>The EWC terms, oldest first.</summary>
    public IReadOnlyList<EwcTerm> EwcTerms => _ewc;

    /// <summary>The replay buffer (null when no replay is used).</summary>
    public ReplayBuffer? Replay { get; set; }

    /// <summary>The LwF teacher's weights by parameter name (null before the first experience ends).</summary>
    public IReadOnlyDictionary<string, Tensor>? Teacher => _teacher;

    /// <summary>Adds an EWC term; the state takes ownership.</summary>
    public void AddEwcTerm(EwcTerm term)
    {
        ArgumentNullException.ThrowIfNull(term);
        _ewc.Add(term);
    }

    /// <summary>Replaces all EWC terms (disposing the old ones that are not kept); the state takes ownership.</summary>
    public void ReplaceEwcTerms(IEnumerable<EwcTerm> terms)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var kept = terms.ToList();
        foreach (var old in _ewc.Where(t => !kept.Contains(t)))
        {
            old.Dispose();
        }

        _ewc.Clear();
        _ewc.AddRange(kept);
    }

    /// <summary>Sets the LwF teacher's weights (disposing the previous ones); the state takes ownership.</summary>
    public void SetTeacher(IReadOnlyDictionary<string, Tensor>? weights)
    {
        if (_teacher is not null)
        {
            foreach (var tensor in _teacher.Values)
            {
                tensor.Dispose();
            }
        }

        _teacher = weights?.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// Every tensor of the state under its saved name. A coordinator that consolidates agents' importance can read the
    /// <c>ewc/{k}/fisher/…</c> and <c>ewc/{k}/anchor/…</c> entries and weight them by <see cref="EwcTerm.Samples"/>.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedTensors()
    {
        for (var k = 0; k < _ewc.Count; k++)
        {
            foreach (var (name, tensor) in _ewc[k].Fisher)
            {
                yield return new($"ewc/{k}/fisher/{name}", tensor);
            }

            foreach (var (name, tensor) in _ewc[k].Anchor)
            {
                yield return new($"ewc/{k}/anchor/{name}", tensor);
            }
        }

        if (_teacher is not null)
        {
            foreach (var (name, tensor) in _teacher)
            {
                yield return new($"lwf/teacher/{name}", tensor);
            }
        }

        if (Replay is { Features: { } features })
        {
            yield return new("replay/features", features);
        }
    }

    /// <summary>Saves the state into <paramref name="directory"/> (created if missing), crash-safely.</summary>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var tensors = new List<SafeTensor>();
        foreach (var (name, tensor) in NamedTensors())
        {
            tensors.Add(ToSafeTensor(name, tensor));
        }

        ReplayManifest? replay = null;
        if (Replay is { } buffer)
        {
            tensors.Add(SafeTensor.FromInt64("replay/labels", [buffer.Count], buffer.Labels.Select(l => (long)l).ToArray()));
            tensors.Add(SafeTensor.FromInt64("replay/experiences", [buffer.Count], buffer.Experiences.Select(e => (long)e).ToArray()));
            tensors.Add(SafeTensor.FromInt64("replay/seen", [buffer.Seen.Count, 2], buffer.Seen.SelectMany(p => new[] { p.Key, p.Value }).ToArray()));
            replay = new ReplayManifest(buffer.Policy, buffer.Budget, buffer.Seed, buffer.Count);
        }

        var tensorFile = $"state-{Experience}-{Guid.NewGuid():N}.safetensors";
        SafeTensorsFile.Write(Path.Combine(directory, tensorFile), tensors);
        var manifest = new Manifest(
            FormatVersion,
            Experience,
            [.. SeenClasses],
            tensorFile,
            _ewc.Select(t => new EwcManifest(t.Experience, t.Samples, [.. t.Fisher.Keys])).ToArray(),
            replay,
            _teacher is null ? null : [.. _teacher.Keys]);
        var manifestPath = Path.Combine(directory, ManifestFile);
        var temp = Path.Combine(directory, $".{ManifestFile}.{Guid.NewGuid():N}.tmp");
        using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            JsonSerializer.Serialize(stream, manifest, Json);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, manifestPath, overwrite: true);
        foreach (var stale in Directory.EnumerateFiles(directory, "state-*.safetensors"))
        {
            if (Path.GetFileName(stale) != tensorFile)
            {
                File.Delete(stale);
            }
        }
    }

    /// <summary>True when <paramref name="directory"/> holds a saved state.</summary>
    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, ManifestFile));

    /// <summary>Loads the state saved in <paramref name="directory"/>, its tensors on <paramref name="device"/>.</summary>
    /// <exception cref="InvalidDataException">The manifest or the tensors are missing or inconsistent.</exception>
    public static ContinualState Load(string directory, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        device ??= torch.CPU;
        var manifestPath = Path.Combine(directory, ManifestFile);
        Manifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifestPath), Json)
                ?? throw new InvalidDataException($"'{manifestPath}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{manifestPath}' is not a continual-state manifest: {e.Message}", e);
        }

        if (manifest.Format != FormatVersion)
        {
            throw new InvalidDataException($"'{manifestPath}' has format {manifest.Format}; this build reads format {FormatVersion}.");
        }

        var content = SafeTensorsFile.Read(Path.Combine(directory, manifest.Tensors));
        Tensor Get(string name) => content.TryGet(name, out var t)
            ? ToTensor(t, device)
            : throw new InvalidDataException($"'{manifest.Tensors}' has no tensor '{name}' that the manifest names.");

        var state = new ContinualState { Experience = manifest.Experience };
        try
        {
            state.SeenClasses.UnionWith(manifest.SeenClasses);
            for (var k = 0; k < manifest.Ewc.Length; k++)
            {
                var entry = manifest.Ewc[k];
                var fisher = entry.Parameters.ToDictionary(p => p, p => Get($"ewc/{k}/fisher/{p}"), StringComparer.Ordinal);
                var anchor = entry.Parameters.ToDictionary(p => p, p => Get($"ewc/{k}/anchor/{p}"), StringComparer.Ordinal);
                state.AddEwcTerm(new EwcTerm(entry.Experience, entry.Samples, fisher, anchor));
            }

            if (manifest.Teacher is { } teacher)
            {
                state.SetTeacher(teacher.ToDictionary(p => p, p => Get($"lwf/teacher/{p}"), StringComparer.Ordinal));
            }

            if (manifest.Replay is { } replay)
            {
                var buffer = ReplayBuffer.Create(replay.Policy, replay.Budget, replay.Seed);
                state.Replay = buffer;
                var seen = content["replay/seen"].ToInt64();
                var seenMap = new Dictionary<int, long>();
                for (var i = 0; i + 1 < seen.Length; i += 2)
                {
                    seenMap[(int)seen[i]] = seen[i + 1];
                }

                if (replay.Count > 0)
                {
                    buffer.Restore(
                        Get("replay/features"),
                        content["replay/labels"].ToInt64().Select(l => (int)l).ToArray(),
                        content["replay/experiences"].ToInt64().Select(e => (int)e).ToArray(),
                        seenMap);
                }
                else
                {
                    foreach (var (key, value) in seenMap)
                    {
                        buffer.Seen[key] = value;
                    }
                }
            }
        }
        catch
        {
            state.Dispose();
            throw;
        }

        return state;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        ReplaceEwcTerms([]);
        SetTeacher(null);
        Replay?.Dispose();
        Replay = null;
    }

    private static SafeTensor ToSafeTensor(string name, Tensor tensor)
    {
        using var host = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
        return SafeTensor.FromSingles(name, tensor.shape, host.data<float>().ToArray());
    }

    private static Tensor ToTensor(SafeTensor tensor, Device device) =>
        torch.tensor(tensor.ToSingles(), tensor.GetShape(), device: device).DetachFromDisposeScope();

    private sealed record Manifest(int Format, int Experience, int[] SeenClasses, string Tensors, EwcManifest[] Ewc, ReplayManifest? Replay, string[]? Teacher);

    private sealed record EwcManifest(int Experience, long Samples, string[] Parameters);

    private sealed record ReplayManifest(ReplayPolicy Policy, int Budget, long Seed, int Count);
}
