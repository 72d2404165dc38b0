using System.Globalization;
using Federated.Coordinator.Agents;
using Federated.Protocol.V1;

namespace Federated.Coordinator.Rounds;

/// <summary>
/// What the coordinator's run loops share (the synchronous <see cref="RoundRunner"/> and the asynchronous
/// <see cref="AsyncRunner"/>): the hosted-service skeleton that forwards agent connections and disconnections to the
/// loop's event queue while it runs, and stops the application with exit code 1 when the run fails for a reason an
/// operator must see (bad state on disk, bad configuration, I/O, too few agents in time).
/// </summary>
internal abstract class RunLoopService : BackgroundService
{
    /// <summary>The agents whose connections the loop hears about.</summary>
    protected abstract AgentRegistry Registry { get; }

    /// <summary>The loop's event queue.</summary>
    protected abstract RoundEvents Events { get; }

    /// <summary>The application, stopped when the run fails.</summary>
    protected abstract IHostApplicationLifetime Lifetime { get; }

    /// <summary>The run's agents, pause gate and abort signal, and where its end is recorded.</summary>
    protected abstract RunControl Control { get; }

    /// <summary>The run itself (its token is also cancelled when the run is aborted).</summary>
    protected abstract Task RunAsync(CancellationToken stoppingToken);

    /// <summary>Logs a run that failed (each loop with its own event id).</summary>
    protected abstract void OnRunFailed(Exception exception);

    /// <summary>Formats with the invariant culture.</summary>
    protected static string Inv(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Formats with the invariant culture.</summary>
    protected static string Inv(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc />
    protected sealed override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        Registry.Changed += OnAgentChanged;
        using var running = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, Control.AbortToken);
        try
        {
            await RunAsync(running.Token).ConfigureAwait(false);
            Control.End(RunStates.Finished);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping: the run is neither finished nor aborted; it resumes with the coordinator.
        }
        catch (OperationCanceledException) when (Control.AbortToken.IsCancellationRequested)
        {
            Control.End(RunStates.Aborted);
        }
        catch (Exception e) when (e is InvalidDataException or InvalidOperationException or IOException or TimeoutException)
        {
            OnRunFailed(e);
            Control.End(RunStates.Failed, e.Message);
            if (!Control.Managed)
            {
                Environment.ExitCode = 1;
                Lifetime.StopApplication();
            }
        }
        finally
        {
            Registry.Changed -= OnAgentChanged;
        }
    }

    /// <summary>
    /// Ends a finished run with <c>Coordinator:ExitWhenDone</c>: tells every connected agent the run is finished (closing
    /// its session), gives the messages up to 5 s to leave, and stops the application.
    /// </summary>
    protected async Task FinishRunAsync(TimeProvider time)
    {
        var connections = Registry.Broadcast(new CoordinatorMessage { Shutdown = new Shutdown { Reason = "the run is finished" } }, closeAfter: true);
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
        try
        {
            await Task.WhenAll(connections.Select(c => c.Outbox.Reader.Completion)).WaitAsync(grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        Lifetime.StopApplication();
    }

    private void OnAgentChanged(string agentId, AgentEventKind kind)
    {
        if (Control.Includes(agentId))
        {
            Events.Post(new AgentChanged(agentId, kind == AgentEventKind.Connected));
        }
    }
}
