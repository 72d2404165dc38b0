namespace Federated.Client.Attacks;

/// <summary>
/// The omniscient attackers' window onto the honest agents of the same federation (ALIE and IPM, variant
/// <c>omniscient</c>). Only a simulator that hosts every agent in one process can offer it; the agent's default is
/// <see cref="NoColludingChannel"/>. Honest agents announce each training task (<see cref="Expect"/>), then publish
/// the delta they computed (<see cref="Publish"/>) or give up on it (<see cref="Withdraw"/>); attackers ask for the
/// round's honest deltas (<see cref="HonestUpdatesAsync"/>). Implementations are thread-safe.
/// </summary>
public interface IColludingChannel
{
    /// <summary>False for <see cref="NoColludingChannel"/>: omniscient attacks cannot run.</summary>
    bool IsAvailable { get; }

    /// <summary>An honest agent took a training task of <paramref name="round"/>.</summary>
    void Expect(int round, string agentId);

    /// <summary>An honest agent's delta of <paramref name="round"/>; the array is not modified afterwards.</summary>
    void Publish(int round, string agentId, float[] delta);

    /// <summary>An honest agent will not publish for <paramref name="round"/> (its task failed); no-op once published.</summary>
    void Withdraw(int round, string agentId);

    /// <summary>
    /// The honest deltas of <paramref name="round"/>, once every agent that announced a task of that round has
    /// published or withdrawn (and at least one published), or whatever was published when
    /// <paramref name="timeout"/> ends (possibly none).
    /// </summary>
    Task<IReadOnlyList<float[]>> HonestUpdatesAsync(int round, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>No colluding channel (a real deployment, a separate process): every call is a no-op.</summary>
internal sealed class NoColludingChannel : IColludingChannel
{
    /// <summary>The one instance.</summary>
    public static NoColludingChannel Instance { get; } = new();

    private NoColludingChannel()
    {
    }

    /// <inheritdoc />
    public bool IsAvailable => false;

    /// <inheritdoc />
    public void Expect(int round, string agentId)
    {
    }

    /// <inheritdoc />
    public void Publish(int round, string agentId, float[] delta)
    {
    }

    /// <inheritdoc />
    public void Withdraw(int round, string agentId)
    {
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<float[]>> HonestUpdatesAsync(int round, TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<float[]>>([]);
}
