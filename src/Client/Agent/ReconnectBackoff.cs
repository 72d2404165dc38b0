namespace Federated.Client.Agent;

/// <summary>
/// Exponential backoff with full jitter: attempt k waits a uniformly random time in [0, min(max, min·2^k)] seconds,
/// so a fleet of agents that lost the same coordinator does not reconnect in lock-step. <see cref="Reset"/> after a success.
/// Not thread-safe.
/// </summary>
internal sealed class ReconnectBackoff
{
    private readonly double _minSeconds;
    private readonly double _maxSeconds;
    private readonly Random _random;

    /// <summary>Creates the backoff; <paramref name="random"/> defaults to a shared generator.</summary>
    public ReconnectBackoff(double minSeconds, double maxSeconds, Random? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(minSeconds);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSeconds, minSeconds);
        _minSeconds = minSeconds;
        _maxSeconds = maxSeconds;
        _random = random ?? Random.Shared;
    }

    /// <summary>Failed attempts since the last <see cref="Reset"/>.</summary>
    public int Attempt { get; private set; }

    /// <summary>The upper bound of the next delay.</summary>
    public TimeSpan CurrentCeiling => TimeSpan.FromSeconds(Math.Min(_maxSeconds, _minSeconds * Math.Pow(2, Math.Min(Attempt, 62))));

    /// <summary>The delay before the next attempt (and counts the attempt).</summary>
    public TimeSpan NextDelay()
    {
        var ceiling = CurrentCeiling;
        Attempt++;
        return TimeSpan.FromSeconds(_random.NextDouble() * ceiling.TotalSeconds);
    }

    /// <summary>Starts over from the minimum after a successful connection.</summary>
    public void Reset() => Attempt = 0;
}
