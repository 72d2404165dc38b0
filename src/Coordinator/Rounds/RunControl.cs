namespace Federated.Coordinator.Rounds;

/// <summary>The states of a run (<see cref="RunControl.State"/>), as the admin API names them.</summary>
internal static class RunStates
{
    public const string Running = "running";
    public const string Paused = "paused";
    public const string Finished = "finished";
    public const string Aborted = "aborted";
    public const string Failed = "failed";

    /// <summary>True for a run that still holds its agents.</summary>
    public static bool IsActive(string state) => state is Running or Paused;
}

/// <summary>
/// What a run loop takes from whoever manages it: which agents are its own, the pause gate it waits at between rounds,
/// the abort signal, and where its end is recorded. The configured run gets one from the <see cref="Runs.RunManager"/>
/// (its agents: those no submitted run claims); each submitted run gets its own.
/// </summary>
internal sealed class RunControl(Func<string, bool> includes, bool managed, string? runId = null) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _abort = new();
    private TaskCompletionSource? _resumed;
    private string _state = RunStates.Running;

    /// <summary>A control that includes every agent, for a loop nobody manages (tests that build a runner alone).</summary>
    public static RunControl Unmanaged() => new(_ => true, managed: false);

    /// <summary>True for a submitted run: its failure ends the run, not the coordinator.</summary>
    public bool Managed { get; } = managed;

    /// <summary>The id a fresh run takes (a submitted run's); null lets the loop make one.</summary>
    public string? RunId { get; } = runId;

    /// <summary>What task ids of the run start with: a submitted run's id and a slash, so that they never repeat another run's.</summary>
    public string TaskPrefix => RunId is null ? "" : RunId + "/";

    /// <summary>True when <paramref name="agentId"/> is one of the run's agents now.</summary>
    public bool Includes(string agentId) => includes(agentId);

    /// <summary>Signalled when the run is aborted.</summary>
    public CancellationToken AbortToken => _abort.Token;

    /// <summary>Why the run ended early (abort reason, failure, privacy budget); empty otherwise.</summary>
    public string Reason { get; private set; } = "";

    /// <summary>The run's state: running, paused, or how it ended.</summary>
    public string State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Raised (on the thread that changed it) whenever <see cref="State"/> changes.</summary>
    public event Action<RunControl>? StateChanged;

    /// <summary>Stops the run from starting new rounds; false when it is not running.</summary>
    public bool Pause()
    {
        lock (_lock)
        {
            if (_state != RunStates.Running)
            {
                return false;
            }

            _state = RunStates.Paused;
            _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        StateChanged?.Invoke(this);
        return true;
    }

    /// <summary>Lets a paused run go on; false when it is not paused.</summary>
    public bool Resume()
    {
        TaskCompletionSource? resumed;
        lock (_lock)
        {
            if (_state != RunStates.Paused)
            {
                return false;
            }

            _state = RunStates.Running;
            resumed = _resumed;
            _resumed = null;
        }

        resumed?.TrySetResult();
        StateChanged?.Invoke(this);
        return true;
    }

    /// <summary>Aborts an active run (the loop's token is cancelled); false when it has already ended.</summary>
    public bool Abort(string reason)
    {
        lock (_lock)
        {
            if (!RunStates.IsActive(_state))
            {
                return false;
            }
        }

        Reason = reason.Length > 0 ? reason : "aborted by an operator";
        _abort.Cancel();
        return true;
    }

    /// <summary>Waits while the run is paused (returns at once when it is not).</summary>
    public Task WaitWhilePausedAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return _resumed is { } resumed ? resumed.Task.WaitAsync(cancellationToken) : Task.CompletedTask;
        }
    }

    /// <summary>Restores a paused state recorded before a restart (the loop then waits before its next round).</summary>
    public void StartPaused()
    {
        lock (_lock)
        {
            _state = RunStates.Paused;
            _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Records how the run ended (the loop calls it once); <paramref name="reason"/> replaces an empty one.</summary>
    public void End(string state, string reason = "")
    {
        TaskCompletionSource? resumed;
        lock (_lock)
        {
            if (!RunStates.IsActive(_state))
            {
                return;
            }

            _state = _abort.IsCancellationRequested ? RunStates.Aborted : state;
            resumed = _resumed;
            _resumed = null;
        }

        if (Reason.Length == 0)
        {
            Reason = reason;
        }

        resumed?.TrySetCanceled();
        StateChanged?.Invoke(this);
    }

    /// <inheritdoc />
    public void Dispose() => _abort.Dispose();
}
