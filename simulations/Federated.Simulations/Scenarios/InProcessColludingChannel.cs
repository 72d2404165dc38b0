using Federated.Client.Attacks;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// The simulator's side of omniscient ALIE and IPM: one board per round on which the honest agents hosted in this
/// process announce their tasks and publish their deltas, and from which the attackers read them. An attacker waits
/// until every honest agent that announced a task of the round has published or withdrawn (and at least one has
/// published), or until its timeout; the deltas come back in agent-id order, so the attack does not depend on arrival
/// order. Boards older than two rounds are dropped.
/// </summary>
internal sealed class InProcessColludingChannel(TimeProvider time) : IColludingChannel
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, Board> _boards = [];

    /// <inheritdoc />
    public bool IsAvailable => true;

    /// <inheritdoc />
    public void Expect(int round, string agentId)
    {
        lock (_gate)
        {
            BoardOf(round).Expected.Add(agentId);
            foreach (var old in _boards.Keys.Where(r => r < round - 2).ToList())
            {
                _boards.Remove(old);
            }
        }
    }

    /// <inheritdoc />
    public void Publish(int round, string agentId, float[] delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        lock (_gate)
        {
            var board = BoardOf(round);
            board.Expected.Add(agentId);
            board.Published[agentId] = delta;
            board.CompleteIfDone();
        }
    }

    /// <inheritdoc />
    public void Withdraw(int round, string agentId)
    {
        lock (_gate)
        {
            var board = BoardOf(round);
            if (!board.Published.ContainsKey(agentId))
            {
                board.Expected.Remove(agentId);
                board.CompleteIfDone();
            }
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<float[]>> HonestUpdatesAsync(int round, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Board board;
        lock (_gate)
        {
            board = BoardOf(round);
        }

        try
        {
            await board.Done.Task.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Use whatever was published in time.
        }

        lock (_gate)
        {
            return board.Published.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value).ToList();
        }
    }

    private Board BoardOf(int round)
    {
        if (!_boards.TryGetValue(round, out var board))
        {
            board = new Board();
            _boards[round] = board;
        }

        return board;
    }

    private sealed class Board
    {
        public HashSet<string> Expected { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, float[]> Published { get; } = new(StringComparer.Ordinal);

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void CompleteIfDone()
        {
            if (Published.Count > 0 && Expected.All(Published.ContainsKey))
            {
                Done.TrySetResult();
            }
        }
    }
}
