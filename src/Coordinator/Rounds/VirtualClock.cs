using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Federated.Coordinator.Hosting;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Rounds;

/// <summary>
/// Virtual time for simulations (<c>Coordinator:VirtualClock</c>): each agent's compute time per task is drawn once,
/// from the configured distribution keyed by the seed and the agent id, so it does not depend on the machine or on who
/// else shares its cores. The synchronous loop adds the slowest sampled agent's time per round
/// (<see cref="AdvanceRound"/>); the asynchronous loop orders results by their virtual finishing times and moves the
/// clock with <see cref="AdvanceTo"/>. Communication and server time are not simulated (both loops alike).
/// </summary>
internal sealed class VirtualClock
{
    // Φ⁻¹(0.95): a lognormal whose 95th percentile is spread × its 5th has σ = ln(spread) / (2 · 1.6449).
    private const double Z95 = 1.6448536269514722;
    private readonly VirtualClockSettings _settings;

    /// <summary>The clock of <c>Coordinator:VirtualClock</c>.</summary>
    public VirtualClock(IOptions<CoordinatorOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _settings = options.Value.VirtualClock ?? new VirtualClockSettings();
    }

    /// <summary>True when the clock is on (otherwise nothing records virtual time).</summary>
    public bool Enabled => _settings.Enabled;

    /// <summary>Virtual seconds since the run started.</summary>
    public double Now { get; private set; }

    /// <summary><paramref name="agentId"/>'s compute seconds per task.</summary>
    public double ComputeSeconds(string agentId) => ComputeSeconds(_settings, agentId);

    /// <summary><paramref name="agentId"/>'s compute seconds per task under <paramref name="settings"/>.</summary>
    public static double ComputeSeconds(VirtualClockSettings settings, string agentId)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(agentId);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(FormattableString.Invariant($"virtual-clock:{settings.Seed}:{agentId}")));
        var u1 = Uniform(BinaryPrimitives.ReadUInt64LittleEndian(hash));
        var u2 = Uniform(BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(8)));
        var m = settings.Seconds;
        return settings.Distribution switch
        {
            "uniform" => m * (1 + u1 * (settings.Spread - 1)),
            "loguniform" => m * Math.Pow(settings.Spread, u1),
            _ => m * Math.Exp(Math.Log(settings.Spread) / (2 * Z95) * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)),
        };
    }

    /// <summary>A synchronous round with <paramref name="agents"/> sampled: the clock moves by the slowest one's time; returns the new time.</summary>
    public double AdvanceRound(IEnumerable<string> agents)
    {
        ArgumentNullException.ThrowIfNull(agents);
        Now += agents.Select(ComputeSeconds).DefaultIfEmpty(0).Max();
        return Now;
    }

    /// <summary>Moves the clock to <paramref name="time"/> (never backwards); returns the new time.</summary>
    public double AdvanceTo(double time)
    {
        Now = Math.Max(Now, time);
        return Now;
    }

    // In (0, 1): never 0, so the logarithm is finite.
    private static double Uniform(ulong bits) => ((bits >> 11) + 0.5) * (1.0 / (1UL << 53));
}
