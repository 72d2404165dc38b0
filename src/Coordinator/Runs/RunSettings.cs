using System.Text.Json;
using System.Text.Json.Serialization;
using Federated.Coordinator.Hosting;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Runs;

/// <summary>A submitted run as <c>run.json</c> keeps it in the run's folder (rewritten on every change of state).</summary>
internal sealed record RunRecord
{
    public required string RunId { get; init; }
    public string Name { get; init; } = "";
    public Dictionary<string, string> Settings { get; init; } = [];

    /// <summary>The settings with the coordinator's per-run keys as they were at submission (what a resumed run binds).</summary>
    public Dictionary<string, string> Resolved { get; init; } = [];
    public List<string> AgentIds { get; init; } = [];
    public Dictionary<string, string> AgentLabels { get; init; } = [];
    public long SubmittedUnixMs { get; init; }
    public string State { get; set; } = Rounds.RunStates.Running;
    public string Reason { get; set; } = "";
    public long EndedUnixMs { get; set; }
    public string Model { get; set; } = "";
    public string Strategy { get; set; } = "";
    public int TotalRounds { get; set; }
    public int CompletedRounds { get; set; }
    public string GlobalChecksum { get; set; } = "";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    /// <summary>Writes the record to <paramref name="path"/> (a temporary file renamed over it: never half written).</summary>
    public void Save(string path)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(this, Json));
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads a record; <see cref="InvalidDataException"/> when the file is not one.</summary>
    public static RunRecord Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"'{path}' holds no run record.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a run record: {e.Message}", e);
        }
    }
}

/// <summary>
/// Turns a submitted run's settings (configuration keys relative to the <c>Coordinator</c> section) into the run's
/// <see cref="CoordinatorOptions"/>: the coordinator's own settings, overlaid with the run's, bound strictly (an unknown
/// key is an error, not ignored), validated as on start, with the run's own state folder.
/// </summary>
internal static class RunSettings
{
    /// <summary>
    /// Keys that belong to the coordinator, not to one run (its service, storage, security and agents' sessions), by
    /// their first segment.
    /// </summary>
    public static readonly IReadOnlySet<string> CoordinatorWide = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        nameof(CoordinatorOptions.StateDirectory), nameof(CoordinatorOptions.Store), nameof(CoordinatorOptions.DatabaseFile),
        nameof(CoordinatorOptions.Resume), nameof(CoordinatorOptions.MetricsFile), nameof(CoordinatorOptions.RosterFile),
        nameof(CoordinatorOptions.ExitWhenDone), nameof(CoordinatorOptions.EnrollmentKey), nameof(CoordinatorOptions.ChunkBytes),
        nameof(CoordinatorOptions.MaxPayloadBytes), nameof(CoordinatorOptions.MaxReceiveMessageBytes),
        nameof(CoordinatorOptions.Http2ConnectionWindowBytes), nameof(CoordinatorOptions.Http2StreamWindowBytes),
        nameof(CoordinatorOptions.HeartbeatSeconds), nameof(CoordinatorOptions.AgentTimeoutSeconds),
        nameof(CoordinatorOptions.Prometheus), nameof(CoordinatorOptions.Dashboard), nameof(CoordinatorOptions.Security),
        nameof(CoordinatorOptions.Runs), nameof(CoordinatorOptions.Admin), nameof(CoordinatorOptions.Population),
    };

    /// <summary>Most settings one run may carry.</summary>
    public const int MaxSettings = 512;

    /// <summary>
    /// The options of a run with <paramref name="settings"/> over the coordinator's <paramref name="coordinator"/>
    /// section, its state in <paramref name="runDirectory"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A setting is unknown, coordinator-wide, unreadable or out of range (the message says which).</exception>
    public static CoordinatorOptions Build(IConfigurationSection coordinator, IReadOnlyDictionary<string, string> settings, string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        var overlay = Normalize(settings);
        var options = new CoordinatorOptions();
        coordinator.Bind(options);

        // A run that names its own strategy starts from none of the configured strategy's options, and one that gives an
        // input shape gives all of it (the binder would otherwise merge the two key by key).
        if (overlay.ContainsKey(nameof(CoordinatorOptions.Strategy)))
        {
            options.StrategyOptions = [];
        }

        if (overlay.Keys.Any(IsInputShape))
        {
            options.InputShape = [];
        }

        try
        {
            new ConfigurationBuilder().AddInMemoryCollection(overlay).Build().Bind(options, binder => binder.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            // "'X' was not found on type Y" or "Failed to convert configuration value at 'Z' to type 'T'."
            throw new ArgumentException($"The run's settings do not bind: {e.Message}", e);
        }

        return Finish(options, runDirectory);
    }

    /// <summary>
    /// The run's settings frozen at submission: <paramref name="settings"/> over every per-run key the coordinator's
    /// <paramref name="coordinator"/> section sets now (less the configured strategy's options when the run names its
    /// own strategy, and the configured input shape when it gives one), so that a run resumed after the coordinator's
    /// settings changed runs as it was submitted.
    /// </summary>
    public static Dictionary<string, string> Resolve(IConfigurationSection coordinator, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        var overlay = Normalize(settings);
        var ownStrategy = overlay.ContainsKey(nameof(CoordinatorOptions.Strategy));
        var ownShape = overlay.Keys.Any(IsInputShape);
        var resolved = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in coordinator.AsEnumerable(makePathsRelative: true))
        {
            var first = key.Split(':')[0];
            if (value is null || !PerRun.Contains(first)
                || (ownStrategy && first.Equals(nameof(CoordinatorOptions.StrategyOptions), StringComparison.OrdinalIgnoreCase))
                || (ownShape && IsInputShape(key)))
            {
                continue;
            }

            resolved[key] = value;
        }

        foreach (var (key, value) in overlay)
        {
            resolved[key] = value!;
        }

        return resolved;
    }

    /// <summary>The first segments of the keys a run may set: every option that is not coordinator-wide.</summary>
    private static readonly HashSet<string> PerRun = typeof(CoordinatorOptions).GetProperties()
        .Select(p => p.Name)
        .Where(n => !CoordinatorWide.Contains(n) && n != nameof(CoordinatorOptions.Mode))
        .ToHashSet(StringComparer.OrdinalIgnoreCase);

    private static bool IsInputShape(string key) => key.StartsWith(nameof(CoordinatorOptions.InputShape) + ":", StringComparison.OrdinalIgnoreCase);

    /// <summary>The run's keys relative to the section, checked one by one.</summary>
    private static Dictionary<string, string?> Normalize(IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Count > MaxSettings)
        {
            throw new ArgumentException($"A run carries at most {MaxSettings} settings, not {settings.Count}.");
        }

        var overlay = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (rawKey, value) in settings)
        {
            var key = rawKey.Trim().Replace("__", ":", StringComparison.Ordinal);
            if (key.StartsWith(CoordinatorOptions.Section + ":", StringComparison.OrdinalIgnoreCase))
            {
                key = key[(CoordinatorOptions.Section.Length + 1)..];
            }

            if (key.Length == 0 || key.Length > 256 || key.Split(':').Any(s => s.Length == 0))
            {
                throw new ArgumentException($"Setting '{rawKey}' is not a configuration key (segments separated by ':', e.g. Training:LearningRate).");
            }

            var first = key.Split(':')[0];
            if (CoordinatorWide.Contains(first))
            {
                throw new ArgumentException($"Setting '{key}' belongs to the coordinator, not to one run; set it in the coordinator's configuration.");
            }

            if (value is null || value.Length > 4096)
            {
                throw new ArgumentException($"Setting '{key}' needs a value of at most 4,096 characters.");
            }

            overlay[key] = value;
        }

        if (overlay.TryGetValue(nameof(CoordinatorOptions.Mode), out var mode) && !string.Equals(mode?.Trim(), "sync", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"Setting 'Mode' is '{mode}': submitted runs are synchronous (sync); FedBuff runs as the configured run.");
        }

        return overlay;
    }

    /// <summary>Gives the options the run's own state folder and fixed keys, and validates them as on start.</summary>
    private static CoordinatorOptions Finish(CoordinatorOptions options, string runDirectory)
    {
        options.StateDirectory = runDirectory;
        options.DatabaseFile = "run.db";
        options.MetricsFile = "rounds.csv";
        options.Resume = true;
        options.ExitWhenDone = false;
        options.RosterFile = "";
        options.Mode = "sync";
        var failures = new DataAnnotationValidateOptions<CoordinatorOptions>(null).Validate(null, options).Failures ?? [];
        var crossField = new CoordinatorOptionsValidator().Validate(null, options).Failures ?? [];
        var all = failures.Concat(crossField).ToList();
        if (all.Count == 0)
        {
            try
            {
                // The strategy and its options are checked now, not when the run's loop starts.
                _ = Learning.Strategies.StrategyFactory.Create(options.Strategy, options.StrategyOptions);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
            {
                all.Add($"Strategy '{options.Strategy}': {e.Message}");
            }
        }

        if (all.Count > 0)
        {
            throw new ArgumentException($"The run's settings are invalid: {string.Join(" ", all)}");
        }

        return options;
    }
}
