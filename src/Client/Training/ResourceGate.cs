using Federated.Client.Agent;
using Federated.Client.Hosting;
using Federated.Learning.Training;

namespace Federated.Client.Training;

/// <summary>
/// Holds training to the agent's resource limits, between mini-batches: it waits while the pause file exists or the
/// local time is outside the training window, and after each batch rests long enough that training takes at most
/// <see cref="ClientResourceOptions.DutyCycle"/> of the wall time. It runs on the agent's torch thread (blocking
/// there is what pausing means) and gives up waiting when the task is cancelled.
/// </summary>
internal sealed class ResourceGate : ITrainingPlugin
{
    private readonly ClientResourceOptions _options;
    private readonly string _pauseFile;
    private readonly (TimeSpan Start, TimeSpan End)? _window;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action<string?>? _onPause;
    private CancellationToken _cancellation;
    private long _batchStarted;

    /// <summary>Reads the limits from <paramref name="options"/>; a relative pause file is under <paramref name="stateDirectory"/>.</summary>
    public ResourceGate(ClientResourceOptions options, string stateDirectory, TimeProvider time, ILogger logger, Action<string?>? onPause = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _pauseFile = Path.GetFullPath(options.PauseFile, Path.GetFullPath(stateDirectory));
        _window = options.GetTrainingWindow();
        _time = time;
        _logger = logger;
        _onPause = onPause;
    }

    /// <summary>The pause file (absolute).</summary>
    public string PauseFile => _pauseFile;

    /// <summary>Time spent resting for the duty cycle, in total.</summary>
    public TimeSpan Rested { get; private set; }

    /// <summary>Time spent paused or outside the window, in total.</summary>
    public TimeSpan Paused { get; private set; }

    /// <summary>The token that ends waits (the current task's).</summary>
    public void Attach(CancellationToken cancellationToken) => _cancellation = cancellationToken;

    /// <summary>Why training may not run now (null when it may).</summary>
    public string? BlockedReason()
    {
        if (File.Exists(_pauseFile))
        {
            return $"pause file {_pauseFile} exists";
        }

        if (_window is { } window && !InWindow(_time.GetLocalNow().TimeOfDay, window.Start, window.End))
        {
            return $"outside the training window {_options.TrainingWindow}";
        }

        return null;
    }

    /// <summary>True when <paramref name="now"/> is inside [start, end), a window that may wrap midnight.</summary>
    public static bool InWindow(TimeSpan now, TimeSpan start, TimeSpan end) =>
        start < end ? now >= start && now < end : now >= start || now < end;

    /// <summary>Blocks while training may not run (cancellation ends the wait).</summary>
    public void WaitUntilAllowed()
    {
        var reason = BlockedReason();
        if (reason is null)
        {
            return;
        }

        var started = _time.GetTimestamp();
        AgentLog.TrainingPaused(_logger, reason);
        _onPause?.Invoke(reason);
        while ((reason = BlockedReason()) is not null)
        {
            if (_cancellation.WaitHandle.WaitOne(TimeSpan.FromSeconds(_options.PollSeconds)))
            {
                break;
            }
        }

        var waited = _time.GetElapsedTime(started);
        Paused += waited;
        _onPause?.Invoke(null);
        AgentLog.TrainingResumed(_logger, waited.TotalSeconds);
    }

    /// <inheritdoc />
    public void BeforeTraining(TrainingContext context) => WaitUntilAllowed();

    /// <inheritdoc />
    public void BeforeBatch(TrainingContext context)
    {
        WaitUntilAllowed();
        _batchStarted = _time.GetTimestamp();
    }

    /// <inheritdoc />
    public void AfterBatch(TrainingContext context)
    {
        if (_options.DutyCycle >= 1 || _batchStarted == 0)
        {
            return;
        }

        var busy = _time.GetElapsedTime(_batchStarted);
        var rest = busy * ((1 / _options.DutyCycle) - 1);
        if (rest > TimeSpan.Zero)
        {
            _cancellation.WaitHandle.WaitOne(rest);
            Rested += rest;
        }
    }
}
