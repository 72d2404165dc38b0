namespace Federated.Coordinator.Services;

/// <summary>When this coordinator process started, read through the injected <see cref="TimeProvider"/>.</summary>
internal sealed class CoordinatorClock(TimeProvider time)
{
    private readonly long _started = time.GetTimestamp();

    /// <summary>Time since start.</summary>
    public TimeSpan Uptime => time.GetElapsedTime(_started);
}
