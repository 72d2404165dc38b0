using System.Globalization;
using System.Threading.Channels;
using Federated.Coordinator.Agents;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Federated.Simulations.Scenarios;

/// <summary>What a virtual-client run held in memory.</summary>
/// <param name="Capacity">The pool's bound: agents alive at once, at most.</param>
/// <param name="MaxHeld">The most agents alive at once during the run.</param>
/// <param name="Materialized">Agent hosts started in all (each restores its state from disk).</param>
/// <param name="FailedStarts">Agent hosts that failed to start.</param>
public sealed record VirtualPoolStats(int Capacity, int MaxHeld, int Materialized, int FailedStarts);

/// <summary>
/// Virtual clients: the coordinator samples from every enrolled agent, and this pool starts only the sampled ones —
/// the real client host, restoring its state directory from disk — at most <c>capacity</c> at a time, and stops
/// each one once the coordinator releases it (its result is in, it failed, or the round closed). Agents waiting
/// for a slot are started in the order the coordinator asked for them.
/// </summary>
internal sealed class VirtualAgentPool : IAgentActivator, IAsyncDisposable
{
    private readonly Func<int, string, CancellationToken, Task<IHost>> _start;
    private readonly SemaphoreSlim _slots;
    private readonly Channel<string> _requests = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new();
    private readonly HashSet<string> _wanted = new(StringComparer.Ordinal);
    private readonly HashSet<string> _starting = new(StringComparer.Ordinal);
    private readonly HashSet<string> _releasedWhileStarting = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IHost> _live = new(StringComparer.Ordinal);
    private readonly List<Task> _stopping = [];
    private readonly CancellationTokenSource _shutdown = new();
    private Task _loop = Task.CompletedTask;
    private int _maxHeld;
    private int _held;
    private int _materialized;
    private int _failedStarts;

    /// <summary>Creates the pool; <paramref name="start"/> builds and starts agent <c>index</c> against the coordinator address.</summary>
    public VirtualAgentPool(int capacity, Func<int, string, CancellationToken, Task<IHost>> start)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _start = start;
        _slots = new SemaphoreSlim(capacity, capacity);
    }

    /// <summary>The most agents alive at once.</summary>
    public int Capacity { get; }

    /// <summary>The figures so far.</summary>
    public VirtualPoolStats Stats => new(Capacity, Volatile.Read(ref _maxHeld), Volatile.Read(ref _materialized), Volatile.Read(ref _failedStarts));

    /// <summary>Starts serving activations against the coordinator at <paramref name="address"/>.</summary>
    public void Start(string address, CancellationToken cancellationToken)
    {
        var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        _loop = Task.Run(() => ServeAsync(address, linked.Token), CancellationToken.None)
            .ContinueWith(_ => linked.Dispose(), TaskScheduler.Default);
    }

    /// <inheritdoc />
    public void Activate(int round, IReadOnlyList<string> agentIds)
    {
        ArgumentNullException.ThrowIfNull(agentIds);
        lock (_gate)
        {
            foreach (var id in agentIds)
            {
                if (_wanted.Add(id))
                {
                    _requests.Writer.TryWrite(id);
                }
            }
        }
    }

    /// <inheritdoc />
    public bool RetiresReleasedAgents => true;

    /// <inheritdoc />
    public void Release(string agentId)
    {
        IHost? host;
        lock (_gate)
        {
            if (_wanted.Remove(agentId))
            {
                return; // never started: its request is skipped
            }

            if (_starting.Contains(agentId))
            {
                _releasedWhileStarting.Add(agentId);
                return;
            }

            if (!_live.Remove(agentId, out host))
            {
                return;
            }

            _stopping.RemoveAll(t => t.IsCompleted);
            _stopping.Add(Task.Run(() => RetireAsync(host), CancellationToken.None));
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _requests.Writer.TryComplete();
        await _shutdown.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        List<Task> stops;
        lock (_gate)
        {
            stops = [.. _stopping, .. _live.Values.Select(RetireAsync)];
            _live.Clear();
        }

        await Task.WhenAll(stops).ConfigureAwait(false);
        _shutdown.Dispose();
        _slots.Dispose();
    }

    private async Task ServeAsync(string address, CancellationToken cancellationToken)
    {
        await foreach (var id in _requests.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                if (!_wanted.Remove(id))
                {
                    _slots.Release(); // released before its turn came
                    continue;
                }

                _starting.Add(id);
                _maxHeld = Math.Max(_maxHeld, ++_held);
            }

            IHost? host = null;
            try
            {
                host = await _start(FederationPlan.AgentIndex(id), address, cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _materialized);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The agent could not start (its log says why); the coordinator counts it as never having come.
                Interlocked.Increment(ref _failedStarts);
            }
            finally
            {
                lock (_gate)
                {
                    _starting.Remove(id);
                    if (host is null)
                    {
                        _held--;
                        _slots.Release();
                    }
                    else if (_releasedWhileStarting.Remove(id))
                    {
                        _stopping.Add(Task.Run(() => RetireAsync(host), CancellationToken.None));
                    }
                    else
                    {
                        _live[id] = host;
                        var started = host;
                        started.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => OnStoppedByItself(id, started));
                    }
                }
            }
        }
    }

    /// <summary>An agent that gave up by itself (it could not start, say) frees its slot at once; the round's deadline counts it.</summary>
    private void OnStoppedByItself(string id, IHost host)
    {
        lock (_gate)
        {
            if (!_live.TryGetValue(id, out var current) || !ReferenceEquals(current, host))
            {
                return; // retired by the pool, which removed it first
            }

            _live.Remove(id);
            _stopping.RemoveAll(t => t.IsCompleted);
            _stopping.Add(Task.Run(() => RetireAsync(host), CancellationToken.None));
        }
    }

    /// <summary>Stops the agent (it has already written its state), then frees its slot.</summary>
    private async Task RetireAsync(IHost host)
    {
        try
        {
            await InProcessFederation.StopAgentAsync(host).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                _held--;
            }

            _slots.Release();
        }
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"virtual pool: {Stats}");
}
