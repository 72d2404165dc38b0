using System.Diagnostics;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

public sealed class LiveProgressTests
{
    private static readonly RoundRecord[] TwoRounds =
    [
        new(1, 0.5, 1.2, 1_000_000, 2_000_000, 3.5, 4, 0, 3.0, 400),
        new(2, 0.6, 1.0, 1_000_000, 2_000_000, 3.1, 3, 1, 2.9, 410),
    ];

    [Fact]
    public void Redirected_PrintsEachRoundOnceAsPlainLines()
    {
        using var output = new StringWriter();
        using var progress = new LiveProgress(new Scenario { Rounds = 5 }, Stopwatch.StartNew(), output, interactive: false);

        progress.Print(TwoRounds[..1]);
        progress.Print(TwoRounds);
        progress.Finish();

        var lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("round    1/5 | participants    4 dropped   0 | accuracy", lines[0], StringComparison.Ordinal);
        Assert.Contains("dropped   1", lines[1], StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output.ToString());
        Assert.DoesNotContain('\r', output.ToString().Replace(Environment.NewLine, "\n", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Terminal_RedrawsAStatusLineAndClearsItBeforeEachRoundLine()
    {
        using var output = new StringWriter();
        var csv = Path.Combine(Path.GetTempPath(), $"federated-live-{Guid.NewGuid():N}.csv");
        using var progress = new LiveProgress(new Scenario { Rounds = 5 }, Stopwatch.StartNew(), output, interactive: true);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(1.3));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => progress.FollowAsync(csv, stop.Token));
        progress.Print(TwoRounds);
        progress.Finish();

        var text = output.ToString();
        Assert.Contains("\r\u001b[2K", text, StringComparison.Ordinal);
        Assert.Contains("round 1/5: starting", text, StringComparison.Ordinal);
        var firstRoundLine = text.IndexOf("round    1/5 |", StringComparison.Ordinal);
        Assert.True(firstRoundLine > 0);
        Assert.Equal("\r\u001b[2K", text[(firstRoundLine - 5)..firstRoundLine]); // the status line was erased first
    }
}
