using Federated.Client.Agent;

namespace Federated.Client.Tests;

public sealed class ReconnectBackoffTests
{
    [Fact]
    public void Ceiling_DoublesFromMinUpToMax()
    {
        var backoff = new ReconnectBackoff(0.5, 30, new Random(1));
        var ceilings = new List<double>();
        for (var i = 0; i < 10; i++)
        {
            ceilings.Add(backoff.CurrentCeiling.TotalSeconds);
            backoff.NextDelay();
        }

        Assert.Equal(new[] { 0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30 }, ceilings);
        backoff.Reset();
        Assert.Equal(0.5, backoff.CurrentCeiling.TotalSeconds);
        Assert.Equal(0, backoff.Attempt);
    }

    [Fact]
    public void Delays_StayWithinZeroAndCeiling_AndGrowOnAverage()
    {
        var random = new Random(7);
        var early = new List<double>();
        var late = new List<double>();
        for (var run = 0; run < 200; run++)
        {
            var backoff = new ReconnectBackoff(0.5, 30, random);
            for (var attempt = 0; attempt < 12; attempt++)
            {
                var ceiling = backoff.CurrentCeiling;
                var delay = backoff.NextDelay();
                Assert.InRange(delay, TimeSpan.Zero, ceiling);
                Assert.InRange(delay.TotalSeconds, 0, 30);
                (attempt == 0 ? early : late).Add(delay.TotalSeconds);
            }
        }

        Assert.True(late.Average() > 10 * early.Average());
        Assert.True(late.Max() > 20);
    }
}
