using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.State;
using Federated.Coordinator.Telemetry;
using Federated.Coordinator.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Runs;

/// <summary>A refused admin request: the gRPC status it becomes and a sentence for the operator.</summary>
internal sealed class RunRequestException(StatusCode code, string message) : Exception(message)
{
    public StatusCode Code { get; } = code;
}

/// <summary>
/// The runs of one coordinator: the configured run (the hosted round loop its settings describe) and the runs submitted
/// through the admin API, each a round loop of its own with its own model, strategy, settings, events, status, store
/// and folder, over the agents it claims. Routes every agent's session events to the run that holds the agent, keeps
/// each run's record (<c>run.json</c>) and history after it ends, and resumes active runs when the coordinator restarts.
/// </summary>
internal sealed partial class RunManager : IHostedService, IAsyncDisposable
{
    private readonly CoordinatorOptions _options;
    private readonly IConfiguration _configuration;
    private readonly AgentRegistry _registry;
    private readonly IAgentActivator _activator;
    private readonly TransferHub _transfers;
    private readonly RoundEvents _configuredEvents;
    private readonly RunStatus _configuredStatus;
    private readonly CoordinatorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<RunManager> _logger;
    private readonly Lock _lock = new();
    private readonly List<ManagedRun> _runs = [];
    private readonly string _runsDirectory;

    public RunManager(
        IOptions<CoordinatorOptions> options,
        IConfiguration configuration,
        AgentRegistry registry,
        IAgentActivator activator,
        TransferHub transfers,
        RoundEvents configuredEvents,
        RunStatus configuredStatus,
        CoordinatorMetrics metrics,
        TimeProvider time,
        IHostApplicationLifetime lifetime,
        ILoggerFactory loggers)
    {
        _options = options.Value;
        _configuration = configuration;
        _registry = registry;
        _activator = activator;
        _transfers = transfers;
        _configuredEvents = configuredEvents;
        _configuredStatus = configuredStatus;
        _metrics = metrics;
        _time = time;
        _lifetime = lifetime;
        _loggers = loggers;
        _logger = loggers.CreateLogger<RunManager>();
        _runsDirectory = Path.Combine(_options.StateDirectory, "runs");
        ConfiguredControl = new RunControl(agentId => OwnerOf(agentId) is null, managed: false);
        if (!_options.Runs.RunOnStart)
        {
            ConfiguredControl.End(RunStates.Finished, "not started: Coordinator:Runs:RunOnStart is false");
        }
    }

    /// <summary>The configured run's control: its agents are those no submitted run claims.</summary>
    public RunControl ConfiguredControl { get; }

    /// <summary>The submitted run that holds <paramref name="agentId"/> now, or null (the agent is the configured run's).</summary>
    public ManagedRun? OwnerOf(string agentId)
    {
        var labels = _registry.Find(agentId)?.Capabilities.Labels;
        lock (_lock)
        {
            foreach (var run in _runs)
            {
                if (run.IsActive && run.Matches(agentId, labels))
                {
                    return run;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// The event queue of the run that holds <paramref name="agentId"/>; null when no active run does (the configured run
    /// has ended or never started), so that the caller answers the agent itself.
    /// </summary>
    public RoundEvents? EventsFor(string agentId) =>
        OwnerOf(agentId) is { } run ? run.Events : RunStates.IsActive(ConfiguredControl.State) ? _configuredEvents : null;

    /// <summary>The id of the run that holds <paramref name="agentId"/> (the configured run's when none claims it).</summary>
    public string RunIdFor(string agentId) => OwnerOf(agentId)?.Record.RunId ?? _configuredStatus.RunId;

    /// <summary>Validates and starts a run.</summary>
    /// <exception cref="RunRequestException">The request is refused (the status and message say why).</exception>
    public async Task<RunInfo> SubmitAsync(SubmitRunRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Name.Length > 200)
        {
            throw new RunRequestException(StatusCode.InvalidArgument, "A run's name is at most 200 characters.");
        }

        if (request.AgentIds.Count == 0 && request.AgentLabels.Count == 0)
        {
            throw new RunRequestException(StatusCode.InvalidArgument, "A run needs agents: give agent ids, agent labels or both.");
        }

        if (request.AgentIds.Count > 100_000 || request.AgentLabels.Count > 64)
        {
            throw new RunRequestException(StatusCode.InvalidArgument, "A run names at most 100,000 agent ids and 64 labels.");
        }

        foreach (var id in request.AgentIds)
        {
            if (id.Length is 0 or > 128 || id.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
            {
                throw new RunRequestException(StatusCode.InvalidArgument, $"Agent id '{id}' is not an agent id (1–128 characters without spaces or control characters).");
            }
        }

        foreach (var (key, value) in request.AgentLabels)
        {
            if (key.Length is 0 or > 128 || value.Length > 256)
            {
                throw new RunRequestException(StatusCode.InvalidArgument, $"Label '{key}' is not a label selector (a key of 1–128 characters, a value of at most 256).");
            }
        }

        var runId = $"run-{Guid.NewGuid():N}"[..16];
        var directory = Path.Combine(_runsDirectory, runId);
        CoordinatorOptions options;
        Dictionary<string, string> resolved;
        try
        {
            var section = _configuration.GetSection(CoordinatorOptions.Section);
            options = RunSettings.Build(section, request.Settings, directory);
            resolved = RunSettings.Resolve(section, request.Settings);
        }
        catch (ArgumentException e)
        {
            throw new RunRequestException(StatusCode.InvalidArgument, e.Message);
        }

        var record = new RunRecord
        {
            RunId = runId,
            Name = request.Name,
            Settings = request.Settings.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            Resolved = resolved,
            AgentIds = [.. request.AgentIds.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)],
            AgentLabels = request.AgentLabels.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            SubmittedUnixMs = _time.GetUtcNow().ToUnixTimeMilliseconds(),
            TotalRounds = options.Rounds,
        };

        ManagedRun run;
        lock (_lock)
        {
            var active = _runs.Where(r => r.IsActive).ToList();
            if (active.Count >= _options.Runs.MaxActive)
            {
                throw new RunRequestException(StatusCode.ResourceExhausted, $"{active.Count} runs are active, the most Coordinator:Runs:MaxActive allows; abort or wait for one.");
            }

            foreach (var other in active)
            {
                if (record.AgentIds.FirstOrDefault(other.Record.AgentIds.Contains) is { } taken)
                {
                    throw new RunRequestException(StatusCode.FailedPrecondition, $"Agent '{taken}' is already held by active run {other.Record.RunId}; a run's agents are its own.");
                }
            }

            run = new ManagedRun(record, directory);
            _runs.Add(run);
        }

        try
        {
            Directory.CreateDirectory(directory);
            await StartAsync(run, options, restored: false, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException or ArgumentException or UnauthorizedAccessException or FileNotFoundException or DirectoryNotFoundException)
        {
            // The model or its evaluation data could not be built: the run is refused, and nothing of it is kept.
            lock (_lock)
            {
                _runs.Remove(run);
            }

            await run.DisposeAsync().ConfigureAwait(false);
            TryDelete(directory);
            throw new RunRequestException(StatusCode.InvalidArgument, $"The run cannot start: {e.Message}");
        }

        var agents = string.Join(",", record.AgentIds);
        var labels = string.Join(",", record.AgentLabels.Select(kv => $"{kv.Key}={kv.Value}"));
        LogSubmitted(_logger, runId, record.Name, record.Model, options.Strategy, options.Rounds, agents, labels);
        return Describe(run, detailed: false);
    }

    /// <summary>Every run, the configured one first, then the submitted ones oldest first.</summary>
    public IReadOnlyList<RunInfo> List(bool activeOnly)
    {
        var runs = new List<RunInfo>();
        if (_options.Runs.RunOnStart && (!activeOnly || RunStates.IsActive(ConfiguredControl.State)))
        {
            runs.Add(DescribeConfigured(detailed: false));
        }

        List<ManagedRun> managed;
        lock (_lock)
        {
            managed = [.. _runs];
        }

        runs.AddRange(managed.Where(r => !activeOnly || r.IsActive).Select(r => Describe(r, detailed: false)));
        return runs;
    }

    /// <summary>One run with its settings and history.</summary>
    public RunInfo Get(string runId) => Find(runId) is { } run ? Describe(run, detailed: true) : DescribeConfigured(detailed: true, runId);

    /// <summary>Pauses a running run (the configured one too).</summary>
    public RunInfo Pause(string runId) => Change(runId, c => c.Pause(), "pause", "it is not running");

    /// <summary>Resumes a paused run.</summary>
    public RunInfo Resume(string runId) => Change(runId, c => c.Resume(), "resume", "it is not paused");

    /// <summary>Aborts an active run; its agents are released and its history kept.</summary>
    public async Task<RunInfo> AbortAsync(string runId, string reason)
    {
        if (reason.Length > 1000)
        {
            throw new RunRequestException(StatusCode.InvalidArgument, "An abort reason is at most 1,000 characters.");
        }

        var run = Find(runId);
        var control = run?.Control ?? ConfiguredFor(runId);
        if (!control.Abort(reason))
        {
            throw new RunRequestException(StatusCode.FailedPrecondition, $"Run {runId} cannot be aborted: it is {control.State}.");
        }

        LogAborted(_logger, runId, control.Reason);
        if (run is not null)
        {
            // Back when its loop has stopped and its record says so (a loop slow to stop is described as it is).
            try
            {
                await run.Ended.Task.WaitAsync(TimeSpan.FromSeconds(30), _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }

            return Describe(run, detailed: false);
        }

        return DescribeConfigured(detailed: false);
    }

    private RunInfo Change(string runId, Func<RunControl, bool> change, string verb, string refusal)
    {
        var run = Find(runId);
        var control = run?.Control ?? ConfiguredFor(runId);
        if (!change(control))
        {
            throw new RunRequestException(StatusCode.FailedPrecondition, $"Run {runId} cannot {verb}: {refusal} (it is {control.State}).");
        }

        LogStateChanged(_logger, runId, control.State);
        return run is null ? DescribeConfigured(detailed: false) : Describe(run, detailed: false);
    }

    private ManagedRun? Find(string runId)
    {
        lock (_lock)
        {
            return _runs.FirstOrDefault(r => r.Record.RunId == runId);
        }
    }

    private RunControl ConfiguredFor(string runId) =>
        _options.Runs.RunOnStart && runId.Length > 0 && runId == _configuredStatus.RunId
            ? ConfiguredControl
            : throw new RunRequestException(StatusCode.NotFound, $"No run '{runId}' is known to this coordinator.");

    private async Task StartAsync(ManagedRun run, CoordinatorOptions options, bool restored, CancellationToken cancellationToken)
    {
        var wrapped = Options.Create(options);
        run.Server = new ServerModel(wrapped);
        run.Store = options.Store == "file"
            ? new FileRoundStateStore(options.StateDirectory)
            : new SqliteRoundStateStore(options.StateDirectory, options.ResolvedDatabaseFile, _time);
        if (restored)
        {
            // A restored run shows what it had done before its loop has read the checkpoint again.
            try
            {
                if (run.Store.TryLoad() is { } checkpoint)
                {
                    run.Status.CompletedRounds = checkpoint.Round;
                    run.Status.CurrentRound = checkpoint.Round;
                    run.History.Restore(checkpoint.History);
                }
            }
            catch (InvalidDataException)
            {
                // The loop reports it (and the run fails) when it reads the checkpoint itself.
            }
        }

        run.Record.Model = run.Server.ModelName;
        run.Record.Strategy = options.Strategy;
        run.Record.TotalRounds = options.Rounds;
        run.Control = new RunControl(agentId => OwnerOf(agentId) == run, managed: true, run.Record.RunId);
        if (run.Record.State == RunStates.Paused)
        {
            run.Control.StartPaused();
        }

        run.Control.StateChanged += control => OnStateChanged(run, control);
        run.Record.State = run.Control.State;
        run.Save();
        run.Runner = new RoundRunner(
            wrapped, _registry, _activator, _transfers, run.Events, run.Server, run.Store, run.Status, run.History, _metrics,
            new VirtualClock(wrapped), run.Control, _time, _lifetime, new RunLogger<RoundRunner>(_loggers.CreateLogger($"{typeof(RoundRunner).FullName}[{run.Record.RunId}]")));

        // The agents it claims leave the configured run's view (a task they held there fails as a disconnection).
        foreach (var agentId in _registry.ConnectedIds().Where(id => OwnerOf(id) == run))
        {
            _configuredEvents.Post(new AgentChanged(agentId, Connected: false));
        }

        await run.Runner.StartAsync(cancellationToken).ConfigureAwait(false);
        _ = WatchAsync(run);
    }

    private async Task WatchAsync(ManagedRun run)
    {
        try
        {
            await (run.Runner!.ExecuteTask ?? Task.CompletedTask).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A failure the loop does not expect still ends only this run.
            run.Control.End(RunStates.Failed, e.Message);
        }

        if (RunStates.IsActive(run.Control.State))
        {
            // The coordinator is stopping: the run resumes with it.
            run.Ended.TrySetResult();
            return;
        }

        run.Record.State = run.Control.State;
        run.Record.Reason = run.Control.Reason.Length > 0 ? run.Control.Reason : run.Status.StopReason;
        run.Record.EndedUnixMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        run.Record.CompletedRounds = run.Status.CompletedRounds;
        run.Record.GlobalChecksum = run.Status.GlobalChecksum;
        run.Save();
        _transfers.RetireAll(run.Record.RunId + "-");
        var released = _registry.ConnectedIds().Where(id => run.Matches(id, _registry.Find(id)?.Capabilities.Labels) && OwnerOf(id) is null).ToList();
        run.Release();
        foreach (var agentId in released)
        {
            _configuredEvents.Post(new AgentChanged(agentId, Connected: true));
        }

        LogEnded(_logger, run.Record.RunId, run.Record.State, run.Record.CompletedRounds, run.Record.TotalRounds, run.Record.Reason);
        run.Ended.TrySetResult();
    }

    private static void OnStateChanged(ManagedRun run, RunControl control)
    {
        if (RunStates.IsActive(control.State))
        {
            run.Record.State = control.State;
            run.Save();
        }
    }

    /// <summary>Restores the submitted runs recorded in the state folder: ended ones as history, active ones resumed.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_runsDirectory))
        {
            return;
        }

        foreach (var directory in Directory.EnumerateDirectories(_runsDirectory).Order(StringComparer.Ordinal))
        {
            var path = Path.Combine(directory, ManagedRun.RecordFile);
            if (!File.Exists(path))
            {
                continue;
            }

            RunRecord record;
            try
            {
                record = RunRecord.Load(path);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                LogUnreadable(_logger, path, e.Message);
                continue;
            }

            var run = new ManagedRun(record, directory);
            lock (_lock)
            {
                _runs.Add(run);
            }

            if (!RunStates.IsActive(record.State))
            {
                run.Release();
                continue;
            }

            try
            {
                var options = BuildRestored(record, directory);
                await StartAsync(run, options, restored: true, cancellationToken).ConfigureAwait(false);
                LogRestored(_logger, record.RunId, record.State);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException or IOException)
            {
                // It cannot go on (its settings no longer bind, its data is gone): it ends as failed, the others run.
                run.Record.State = RunStates.Failed;
                run.Record.Reason = $"could not resume: {e.Message}";
                run.Record.EndedUnixMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
                run.Save();
                run.Release();
                run.DisposeResources();
                LogEnded(_logger, record.RunId, run.Record.State, 0, record.TotalRounds, run.Record.Reason);
            }
        }
    }

    /// <summary>
    /// A restored run's options: as resolved at submission, so that the coordinator's settings changing since do not
    /// change the run; from its own settings over today's when the resolved ones no longer bind (a key of the
    /// coordinator's that this version does not know), with a warning.
    /// </summary>
    private CoordinatorOptions BuildRestored(RunRecord record, string directory)
    {
        var section = _configuration.GetSection(CoordinatorOptions.Section);
        if (record.Resolved.Count > 0)
        {
            try
            {
                return RunSettings.Build(section, record.Resolved, directory);
            }
            catch (ArgumentException e)
            {
                LogResolvedRefused(_logger, record.RunId, e.Message);
            }
        }

        return RunSettings.Build(section, record.Settings, directory);
    }

    /// <summary>Stops the active runs' loops; their records stay active, so that they resume on the next start.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        List<ManagedRun> runs;
        lock (_lock)
        {
            runs = [.. _runs];
        }

        foreach (var run in runs.Where(r => r.Runner is not null))
        {
            await run.Runner!.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        List<ManagedRun> runs;
        lock (_lock)
        {
            runs = [.. _runs];
            _runs.Clear();
        }

        foreach (var run in runs)
        {
            await run.DisposeAsync().ConfigureAwait(false);
        }
    }

    private RunInfo Describe(ManagedRun run, bool detailed)
    {
        var record = run.Record;
        var live = run.Runner is not null && run.IsActive;
        var info = new RunInfo
        {
            RunId = record.RunId,
            Name = record.Name,
            State = live ? run.Control.State : record.State,
            Configured = false,
            Model = record.Model,
            Strategy = record.Strategy,
            CurrentRound = live ? run.Status.CurrentRound : record.CompletedRounds,
            CompletedRounds = live ? run.Status.CompletedRounds : record.CompletedRounds,
            TotalRounds = record.TotalRounds,
            Reason = record.Reason,
            SubmittedUnixMs = record.SubmittedUnixMs,
            EndedUnixMs = record.EndedUnixMs,
            GlobalChecksum = live ? run.Status.GlobalChecksum : record.GlobalChecksum,
            StateDirectory = run.Directory,
        };
        info.AgentIds.AddRange(record.AgentIds);
        info.AgentLabels.Add(record.AgentLabels);
        if (run.IsActive)
        {
            info.Agents.AddRange(_registry.KnownIds().Where(id => OwnerOf(id) == run));
        }

        if (detailed)
        {
            info.Settings.Add(record.Settings);
            AddRounds(info, run.Runner is not null ? run.History.Rows : run.LoadHistory(_time));
        }

        return info;
    }

    private RunInfo DescribeConfigured(bool detailed, string? runId = null)
    {
        if (runId is not null)
        {
            _ = ConfiguredFor(runId);
        }

        var info = new RunInfo
        {
            RunId = _configuredStatus.RunId,
            Name = "configured",
            State = ConfiguredControl.State,
            Configured = true,
            Model = _options.Model.Trim().ToLowerInvariant(),
            Strategy = _options.Strategy,
            CurrentRound = _configuredStatus.CurrentRound,
            CompletedRounds = _configuredStatus.CompletedRounds,
            TotalRounds = _options.Rounds,
            Reason = ConfiguredControl.Reason.Length > 0 ? ConfiguredControl.Reason : _configuredStatus.StopReason,
            GlobalChecksum = _configuredStatus.GlobalChecksum,
            StateDirectory = _options.StateDirectory,
        };
        if (RunStates.IsActive(ConfiguredControl.State))
        {
            info.Agents.AddRange(_registry.KnownIds().Where(id => OwnerOf(id) is null));
        }

        if (detailed)
        {
            AddRounds(info, History?.Rows ?? []);
        }

        return info;
    }

    /// <summary>The configured run's history (set by the host; null in tests that build the manager alone).</summary>
    public RoundHistory? History { get; set; }

    private static void AddRounds(RunInfo info, IEnumerable<IReadOnlyDictionary<string, string>> rows)
    {
        foreach (var row in rows)
        {
            var round = new RunRound();
            round.Values.Add(row.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
            info.Rounds.Add(round);
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [LoggerMessage(EventId = 1600, Level = LogLevel.Information, Message = "Run {RunId} ('{Name}') submitted: model {Model}, strategy {Strategy}, {Rounds} rounds; agents [{Agents}] labels [{Labels}]")]
    private static partial void LogSubmitted(ILogger logger, string runId, string name, string model, string strategy, int rounds, string agents, string labels);

    [LoggerMessage(EventId = 1601, Level = LogLevel.Information, Message = "Run {RunId} is now {State}")]
    private static partial void LogStateChanged(ILogger logger, string runId, string state);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Warning, Message = "Run {RunId} aborted: {Reason}")]
    private static partial void LogAborted(ILogger logger, string runId, string reason);

    [LoggerMessage(EventId = 1603, Level = LogLevel.Information, Message = "Run {RunId} ended {State} after {Completed} of {Total} rounds {Reason}")]
    private static partial void LogEnded(ILogger logger, string runId, string state, int completed, int total, string reason);

    [LoggerMessage(EventId = 1604, Level = LogLevel.Information, Message = "Run {RunId} restored ({State})")]
    private static partial void LogRestored(ILogger logger, string runId, string state);

    [LoggerMessage(EventId = 1606, Level = LogLevel.Warning, Message = "Run {RunId}: its settings as submitted no longer bind ({Reason}); it resumes with its own keys over the coordinator's current settings")]
    private static partial void LogResolvedRefused(ILogger logger, string runId, string reason);

    [LoggerMessage(EventId = 1605, Level = LogLevel.Error, Message = "Run record {Path} is unreadable and was skipped: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string path, string reason);
}

/// <summary>One submitted run: its record and, while it is active, its round loop and what the loop owns.</summary>
internal sealed class ManagedRun(RunRecord record, string directory) : IAsyncDisposable
{
    /// <summary>The record's file name in the run's folder.</summary>
    public const string RecordFile = "run.json";

    private readonly HashSet<string> _ids = new(record.AgentIds, StringComparer.Ordinal);
    private bool _released;

    public RunRecord Record { get; } = record;

    public string Directory { get; } = directory;

    public RoundEvents Events { get; } = new();

    public RunStatus Status { get; } = new();

    public RoundHistory History { get; } = new();

    public RunControl Control { get; set; } = RunControl.Unmanaged();

    public ServerModel? Server { get; set; }

    public IRoundStateStore? Store { get; set; }

    public RoundRunner? Runner { get; set; }

    /// <summary>Completed when the loop has stopped (ended, or the coordinator stopped it).</summary>
    public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True while the run holds agents.</summary>
    public bool IsActive => !_released && RunStates.IsActive(Runner is null ? Record.State : Control.State);

    /// <summary>True when the agent is named by id or reports every selector label.</summary>
    public bool Matches(string agentId, Google.Protobuf.Collections.MapField<string, string>? labels)
    {
        if (_ids.Contains(agentId))
        {
            return true;
        }

        if (Record.AgentLabels.Count == 0 || labels is null)
        {
            return false;
        }

        foreach (var (key, value) in Record.AgentLabels)
        {
            if (!labels.TryGetValue(key, out var has) || has != value)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Lets its agents go (the run has ended).</summary>
    public void Release()
    {
        _released = true;
        DisposeResources();
    }

    public void Save() => Record.Save(Path.Combine(Directory, RecordFile));

    /// <summary>The completed rounds its store kept (for an ended run).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> LoadHistory(TimeProvider time)
    {
        if (Record.CompletedRounds == 0 && !System.IO.Directory.Exists(Directory))
        {
            return [];
        }

        try
        {
            var database = Path.Combine(Directory, "run.db");
            IRoundStateStore store = File.Exists(database) ? new SqliteRoundStateStore(Directory, database, time) : new FileRoundStateStore(Directory);
            try
            {
                return store.TryLoad()?.History ?? [];
            }
            finally
            {
                (store as IDisposable)?.Dispose();
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException)
        {
            return [];
        }
    }

    /// <summary>Disposes the model and the store (the loop has stopped).</summary>
    public void DisposeResources()
    {
        Server?.Dispose();
        Server = null;
        (Store as IDisposable)?.Dispose();
        Store = null;
    }

    public ValueTask DisposeAsync()
    {
        Runner?.Dispose();
        DisposeResources();
        Control.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>An <see cref="ILogger{T}"/> over a logger of another category (a run's own).</summary>
internal sealed class RunLogger<T>(ILogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        inner.Log(logLevel, eventId, state, exception, formatter);
}
