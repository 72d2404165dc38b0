using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Federated.Simulations.Fault;

/// <summary>
/// A TCP proxy on loopback between agents and the coordinator, for the fault suite: it forwards bytes both ways, can cut
/// every connection at once (a reset, as a dropped network link does), refuse new connections for a while, throttle
/// the agent-to-coordinator direction, and tell its owner how many bytes an upstream burst (an upload) has carried.
/// gRPC runs over HTTP/2 in cleartext here, so the proxy needs no knowledge of the protocol.
/// </summary>
internal sealed class LoopbackProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Agent, TcpClient Coordinator)> _links = [];
    private readonly Task _accepting;
    private long _burstBytes;
    private long _lastUpstream = Stopwatch.GetTimestamp();
    private volatile bool _refusing;

    public LoopbackProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);

        // A small receive buffer (inherited by accepted sockets): with loopback's default buffers of megabytes an agent
        // would hand its whole upload to the kernel at once, and a kill "mid-upload" would come after the agent's last write.
        _listener.Server.ReceiveBufferSize = 32 * 1024;
        _listener.Start();
        _accepting = AcceptLoopAsync();
    }

    /// <summary>The port agents connect to.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The address agents use.</summary>
    public string Address => FormattableString.Invariant($"http://127.0.0.1:{Port}");

    /// <summary>Agent-to-coordinator bytes per second (0: unthrottled).</summary>
    public int UpstreamBytesPerSecond { get; set; }

    /// <summary>
    /// Called with the bytes of the current upstream burst (bytes since the last pause of at least 250 ms) after each
    /// forwarded block. Uploads are bursts of hundreds of kilobytes; heartbeats are tens of bytes a second.
    /// </summary>
    public Action<long>? OnUpstream { get; set; }

    /// <summary>Connections cut so far.</summary>
    public int Cuts { get; private set; }

    /// <summary>Connections refused so far.</summary>
    public int Refused { get; private set; }

    /// <summary>While true, new connections are accepted and closed at once (a link that is down).</summary>
    public bool Refusing
    {
        get => _refusing;
        set => _refusing = value;
    }

    /// <summary>Resets every open connection (both sides see the link drop).</summary>
    public void CutAll()
    {
        lock (_links)
        {
            foreach (var (agent, coordinator) in _links)
            {
                Reset(agent);
                Reset(coordinator);
                Cuts++;
            }

            _links.Clear();
        }
    }

    private static void Reset(TcpClient client)
    {
        try
        {
            if (client.Client is { } socket)
            {
                socket.LingerState = new LingerOption(true, 0); // close with RST, not FIN
            }

            client.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient agent;
            try
            {
                agent = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (_refusing)
            {
                Refused++;
                Reset(agent);
                continue;
            }

            _ = LinkAsync(agent);
        }
    }

    private async Task LinkAsync(TcpClient agent)
    {
        var coordinator = new TcpClient();
        try
        {
            agent.NoDelay = true;
            coordinator.NoDelay = true;
            await coordinator.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The coordinator is down (restarting): the agent sees its connection close and retries.
            Reset(agent);
            coordinator.Dispose();
            return;
        }

        lock (_links)
        {
            _links.Add((agent, coordinator));
        }

        try
        {
            await Task.WhenAll(PumpAsync(agent, coordinator, upstream: true), PumpAsync(coordinator, agent, upstream: false)).ConfigureAwait(false);
        }
        finally
        {
            lock (_links)
            {
                _links.Remove((agent, coordinator));
            }

            agent.Dispose();
            coordinator.Dispose();
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to, bool upstream)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var source = from.GetStream();
            var target = to.GetStream();
            while (true)
            {
                var read = await source.ReadAsync(buffer, _stop.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    to.Client.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (upstream)
                {
                    var now = Stopwatch.GetTimestamp();
                    if (Stopwatch.GetElapsedTime(Interlocked.Exchange(ref _lastUpstream, now), now) > TimeSpan.FromMilliseconds(250))
                    {
                        Interlocked.Exchange(ref _burstBytes, 0);
                    }

                    var burst = Interlocked.Add(ref _burstBytes, read);
                    if (UpstreamBytesPerSecond > 0)
                    {
                        await Task.Delay(TimeSpan.FromSeconds((double)read / UpstreamBytesPerSecond), TimeProvider.System, _stop.Token).ConfigureAwait(false);
                    }

                    OnUpstream?.Invoke(burst);
                }

                await target.WriteAsync(buffer.AsMemory(0, read), _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // A cut, a reset from either side, or the proxy stopping: the other pump ends too.
            Reset(from);
            Reset(to);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        CutAll();
        try
        {
            await _accepting.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
