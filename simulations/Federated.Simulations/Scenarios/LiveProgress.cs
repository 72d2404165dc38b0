using System.Diagnostics;
using System.Globalization;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Net.Client;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Progress of a run. Every completed round is printed once as a plain line, read from the coordinator's
/// <c>rounds.csv</c> (fit for logs). On a terminal, a status line under them is redrawn twice a second with the round
/// in progress — results and failures so far, from the coordinator's status call — plus bytes, elapsed time and ETA.
/// When output is redirected, only the plain lines are written.
/// </summary>
internal sealed class LiveProgress(Scenario scenario, Stopwatch clock, TextWriter console, bool interactive) : IDisposable
{
    private const string ClearLine = "\r\u001b[2K";
    private static readonly string[] Spinner = ["|", "/", "-", "\\"];
    private readonly Lock _gate = new();
    private int _printed;
    private long _bytesUp;
    private long _bytesDown;
    private double _lastAccuracy = double.NaN;
    private bool _statusShown;
    private int _tick;
    private GrpcChannel? _channel;
    private Protocol.V1.Coordinator.CoordinatorClient? _client;

    /// <summary>The coordinator is listening at <paramref name="address"/>: the status line may ask it how the round goes.</summary>
    public void CoordinatorReady(string address)
    {
        if (!interactive)
        {
            return;
        }

        lock (_gate)
        {
            _channel?.Dispose();
            _channel = GrpcChannel.ForAddress(address);
            _client = new Protocol.V1.Coordinator.CoordinatorClient(_channel);
        }
    }

    /// <summary>Follows <paramref name="roundsCsv"/> until cancelled.</summary>
    public async Task FollowAsync(string roundsCsv, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(interactive ? 500 : 1000), TimeProvider.System);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                Print(RunReport.ReadRounds(roundsCsv));
            }
            catch (IOException)
            {
                // The coordinator is writing the file; read it on the next tick.
            }

            if (interactive)
            {
                await DrawStatusAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Prints the rounds not printed yet (and clears the status line first).</summary>
    public void Print(IReadOnlyList<RoundRecord> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        lock (_gate)
        {
            foreach (var r in rounds.Skip(_printed))
            {
                EraseStatus();
                console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"round {r.Round,4}/{scenario.Rounds} | participants {r.Participants,4} dropped {r.Dropped,3} | accuracy {r.Accuracy,7:P2} loss {r.Loss:F4} | up {r.BytesUp / 1e6,8:F2} MB down {r.BytesDown / 1e6,8:F2} MB | {r.DurationS,6:F2} s | ETA {Eta(r.Round):hh\\:mm\\:ss}{(r.Epsilon is { } epsilon ? $" | ε {epsilon:G4}" : "")}"));
                _bytesUp += r.BytesUp;
                _bytesDown += r.BytesDown;
                _lastAccuracy = r.Accuracy;
                _printed++;
            }
        }
    }

    /// <summary>Removes the status line, so the run's last words start on a clean line.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            EraseStatus();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _channel?.Dispose();

    private TimeSpan Eta(int completedRounds) =>
        completedRounds == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / completedRounds * (scenario.Rounds - completedRounds));

    private async Task DrawStatusAsync(CancellationToken cancellationToken)
    {
        StatusReply? status = null;
        var client = _client;
        if (client is not null)
        {
            try
            {
                status = await client.GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current }, deadline: DateTime.UtcNow.AddSeconds(1), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (Grpc.Core.RpcException)
            {
                // Starting or stopping: draw what is known locally.
            }
        }

        lock (_gate)
        {
            var round = status is { CurrentRound: > 0 } ? status.CurrentRound : _printed + 1;
            var inRound = status is { CurrentRound: > 0 } && status.CurrentRound > _printed
                ? string.Create(CultureInfo.InvariantCulture, $"{status.RoundResults}/{status.RoundSelected} results, {status.RoundFailures} failed, {status.RoundElapsedSeconds:F0} s")
                : "starting";
            var eta = _printed == 0 ? "--:--:--" : Eta(_printed).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture);
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{Spinner[_tick++ % Spinner.Length]} round {Math.Min(round, scenario.Rounds)}/{scenario.Rounds}: {inRound} | last accuracy {(double.IsNaN(_lastAccuracy) ? "-" : _lastAccuracy.ToString("P2", CultureInfo.InvariantCulture))} | up {_bytesUp / 1e6:F1} MB down {_bytesDown / 1e6:F1} MB | elapsed {clock.Elapsed:hh\\:mm\\:ss} ETA {eta}");
            console.Write(ClearLine + line);
            console.Flush();
            _statusShown = true;
        }
    }

    private void EraseStatus()
    {
        if (_statusShown)
        {
            console.Write(ClearLine);
            _statusShown = false;
        }
    }
}
