using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Federated.Client.State;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace Federated.Client.Hosting;

/// <summary>
/// The agent's commands besides running: <c>status</c> (identity, device, round, last result and queued work, read
/// from the state directory, so it works whether the agent runs or not), <c>pause</c> and <c>resume</c> (create and
/// remove the pause file). They take the same settings as the agent (appsettings.json, environment, command line).
/// </summary>
internal static class AgentCommands
{
    /// <summary>The command names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["status", "pause", "resume"];

    /// <summary>True when <paramref name="args"/> start with a command.</summary>
    public static bool IsCommand(string[] args) => args.Length > 0 && Names.Contains(args[0], StringComparer.Ordinal);

    /// <summary>Runs the command in <paramref name="args"/>[0]; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var rest = args[1..];
        var json = rest.Contains("--json", StringComparer.Ordinal);
        rest = rest.Where(a => a != "--json").ToArray();
        var unknown = rest.FirstOrDefault(a => !a.StartsWith("--Client:", StringComparison.OrdinalIgnoreCase) && !a.StartsWith("--Client__", StringComparison.OrdinalIgnoreCase));
        if (unknown is not null)
        {
            error.WriteLine($"federated-client {args[0]}: unknown argument '{unknown}'; it takes --json (status only) and --Client:Key=value settings such as --Client:StateDirectory=DIR.");
            return 2;
        }

        if (json && args[0] != "status")
        {
            error.WriteLine($"federated-client {args[0]}: --json belongs to the status command.");
            return 2;
        }

        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(baseDirectory ?? AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddEnvironmentVariables();
        ClientConfiguration.AddClientSources(configuration, rest);
        var options = new ClientOptions();
        try
        {
            configuration.Build().GetSection(ClientOptions.Section).Bind(options);
        }
        catch (InvalidOperationException e)
        {
            error.WriteLine($"federated-client {args[0]}: {e.Message}");
            return 2;
        }

        if (string.IsNullOrWhiteSpace(options.StateDirectory) || string.IsNullOrWhiteSpace(options.Resources?.PauseFile))
        {
            error.WriteLine($"federated-client {args[0]}: Client:StateDirectory and Client:Resources:PauseFile must name a directory and a file.");
            return 2;
        }

        var store = new AgentStateStore(options.StateDirectory, NullLogger<AgentStateStore>.Instance);
        var pauseFile = Path.GetFullPath(options.Resources.PauseFile, store.Directory);
        switch (args[0])
        {
            case "pause":
                Directory.CreateDirectory(Path.GetDirectoryName(pauseFile)!);
                File.WriteAllText(pauseFile, $"paused by federated-client pause at {DateTimeOffset.Now:O}\n");
                output.WriteLine($"Paused: training waits at its next mini-batch while {pauseFile} exists.");
                return 0;
            case "resume":
                File.Delete(pauseFile);
                output.WriteLine($"Resumed: {pauseFile} removed.");
                return 0;
            default:
                return Status(store, pauseFile, json, output, error);
        }
    }

    private static int Status(AgentStateStore store, string pauseFile, bool json, TextWriter output, TextWriter error)
    {
        if (!Directory.Exists(store.Directory))
        {
            error.WriteLine($"federated-client status: the state directory {store.Directory} does not exist (set Client:StateDirectory).");
            return 1;
        }

        var state = store.Load();
        AgentStatus? live = null;
        if (File.Exists(store.StatusPath))
        {
            try
            {
                live = JsonSerializer.Deserialize(File.ReadAllBytes(store.StatusPath), AgentStateJsonContext.Default.AgentStatus);
            }
            catch (Exception e) when (e is JsonException or IOException)
            {
                error.WriteLine($"federated-client status: {store.StatusPath} is unreadable ({e.Message}).");
            }
        }

        var pending = store.ListPending();
        var running = live is not null && IsRunning(live.ProcessId);
        if (json)
        {
            var document = new Dictionary<string, object?>
            {
                ["stateDirectory"] = store.Directory,
                ["running"] = running,
                ["paused"] = File.Exists(pauseFile),
                ["state"] = JsonSerializer.SerializeToElement(state, AgentStateJsonContext.Default.AgentState),
                ["status"] = live is null ? null : JsonSerializer.SerializeToElement(live, AgentStateJsonContext.Default.AgentStatus),
                ["pending"] = pending.Select(p => JsonSerializer.SerializeToElement(p, AgentStateJsonContext.Default.PendingUploadManifest)).ToList(),
            };
            output.WriteLine(JsonSerializer.Serialize(document, StatusJsonContext.Default.DictionaryStringObject));
            return 0;
        }

        var ci = CultureInfo.InvariantCulture;
        output.WriteLine($"agent:        {state.AgentId ?? live?.AgentId ?? "(none yet)"}");
        output.WriteLine($"state:        {store.Directory} (format version {state.Version})");
        output.WriteLine(live is null
            ? "process:      no status.json (never started)"
            : $"process:      {(running ? "running" : "not running")} (pid {live.ProcessId}, started {live.StartedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}, status at {live.UpdatedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss})");
        output.WriteLine($"coordinator:  {live?.Coordinator ?? "?"}{(running ? live!.Connected ? " (connected)" : " (not connected)" : "")}");
        output.WriteLine($"device:       {live?.Device ?? state.Device ?? "?"} (requested {live?.DeviceRequested ?? "?"}, {live?.Threads.ToString(ci) ?? "?"} threads, {live?.Precision ?? "?"}){(live?.DeviceFallback is { } f ? $"; auto fell back: {f}" : "")}");
        if (running)
        {
            var phase = live!.Phase + (live.TaskId is { } t ? $" task {t} round {live.Round}" : "") + (live.PauseReason is { } r ? $" ({r})" : "");
            output.WriteLine($"phase:        {phase}");
        }

        output.WriteLine($"paused:       {(File.Exists(pauseFile) ? $"yes ({pauseFile})" : "no")}");
        output.WriteLine($"last round:   {state.LastRound}{(state.LastTaskId is { } task ? $" (task {task})" : "")}");
        var last = Newest(state.LastResult, live?.LastResult);
        output.WriteLine(last is null
            ? "last result:  none"
            : $"last result:  {last.Kind} round {last.Round} task {last.TaskId}: {(last.Ok ? "ok" : $"failed: {last.Error}")}, {last.Examples} examples"
              + (last.Loss is { } loss ? $", loss {loss.ToString("F4", ci)}" : "")
              + (last.Accuracy is { } accuracy ? $", accuracy {accuracy.ToString("P1", ci)}" : "")
              + (last.Delivered ? "" : ", not yet delivered")
              + (last.At is { } at ? $" at {at.ToLocalTime():yyyy-MM-dd HH:mm:ss}" : ""));
        output.WriteLine($"queued work:  {pending.Count} pending upload(s){(pending.Count == 0 ? "" : ": " + string.Join("; ", pending.Select(p => $"{p.TransferId} (round {p.Round}, {p.Bytes} bytes)")))}");
        return 0;
    }

    private static TaskSummary? Newest(TaskSummary? a, TaskSummary? b) =>
        a is null ? b : b is null ? a : (b.At ?? DateTimeOffset.MinValue) >= (a.At ?? DateTimeOffset.MinValue) ? b : a;

    private static bool IsRunning(int processId)
    {
        if (processId <= 0)
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>Source-generated JSON for the status command's document.</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object?>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(JsonElement))]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<JsonElement>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(bool))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class StatusJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
