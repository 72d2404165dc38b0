using System.Text.Json;
using Federated.Client.State;

namespace Federated.Client.Agent;

/// <summary>Keeps <see cref="AgentStatus"/> and rewrites <c>status.json</c> on every change (small, atomic, best effort).</summary>
internal sealed class AgentStatusReporter
{
    private readonly AgentStateStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private AgentStatus _status;
    private bool _warned;

    /// <summary>Starts in phase <c>starting</c>.</summary>
    public AgentStatusReporter(AgentStateStore store, TimeProvider time, ILogger<AgentStatusReporter> logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _store = store;
        _time = time;
        _logger = logger;
        _status = new AgentStatus { ProcessId = Environment.ProcessId, StartedAt = time.GetUtcNow() };
    }

    /// <summary>The current status.</summary>
    public AgentStatus Current
    {
        get
        {
            lock (_gate)
            {
                return _status;
            }
        }
    }

    /// <summary>Applies <paramref name="change"/> and writes the file.</summary>
    public void Update(Func<AgentStatus, AgentStatus> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate)
        {
            _status = change(_status) with { UpdatedAt = _time.GetUtcNow() };
            try
            {
                AgentStateStore.WriteAtomically(_store.StatusPath, JsonSerializer.SerializeToUtf8Bytes(_status, AgentStateJsonContext.Default.AgentStatus));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (!_warned)
                {
                    _warned = true;
                    AgentLog.PersistFailed(_logger, _store.Directory, e.Message);
                }
            }
        }
    }

    /// <summary>Sets the phase (and the task it concerns).</summary>
    public void Phase(string phase, string? taskId = null, int round = 0) =>
        Update(s => s with { Phase = phase, TaskId = taskId, Round = round, PauseReason = phase == "paused" ? s.PauseReason : null });
}
