using System.Globalization;
using Federated.Coordinator.Hosting;
using Federated.Learning.Asynchronous;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Buffered asynchronous aggregation in a scenario (<c>"async"</c>; the coordinator's <c>Coordinator:Mode=fedbuff</c>):
/// <see cref="Concurrency"/> agents train at a time, each on the newest model when it starts, and every
/// <see cref="BufferSize"/> updates make one new global version; the scenario's <c>rounds</c> counts those versions.
/// </summary>
public sealed class AsyncSection
{
    /// <summary>K: updates per flush.</summary>
    public int BufferSize { get; set; } = 10;

    /// <summary>Agents training at once.</summary>
    public int Concurrency { get; set; } = 20;

    /// <summary>Updates more versions behind than this are rejected (and counted).</summary>
    public int MaxStaleness { get; set; } = 10;

    /// <summary>η_g, the server learning rate.</summary>
    public double ServerLearningRate { get; set; } = 1.0;

    /// <summary>The staleness weighting.</summary>
    public StalenessSection Staleness { get; set; } = new();

    /// <summary>Updates one agent may have in one buffer.</summary>
    public int MaxContributionsPerFlush { get; set; } = 1;

    /// <summary>Updates one agent may contribute over the run (0 = no cap).</summary>
    public long MaxContributionsPerAgent { get; set; }

    /// <summary>The coordinator's settings.</summary>
    public AsyncSettings ToSettings() => new()
    {
        BufferSize = BufferSize,
        Concurrency = Concurrency,
        MaxStaleness = MaxStaleness,
        ServerLearningRate = ServerLearningRate,
        Staleness = new StalenessSettings { Function = Staleness.Function, A = Staleness.A, B = Staleness.B },
        MaxContributionsPerFlush = MaxContributionsPerFlush,
        MaxContributionsPerAgent = MaxContributionsPerAgent,
    };

    /// <summary>The coordinator's keys.</summary>
    public IEnumerable<KeyValuePair<string, string>> CoordinatorKeys()
    {
        string Inv(IFormattable v) => v.ToString(null, CultureInfo.InvariantCulture);
        yield return new("Coordinator:Mode", "fedbuff");
        yield return new("Coordinator:Async:BufferSize", Inv(BufferSize));
        yield return new("Coordinator:Async:Concurrency", Inv(Concurrency));
        yield return new("Coordinator:Async:MaxStaleness", Inv(MaxStaleness));
        yield return new("Coordinator:Async:ServerLearningRate", Inv(ServerLearningRate));
        yield return new("Coordinator:Async:Staleness:Function", Staleness.Function);
        yield return new("Coordinator:Async:Staleness:A", Inv(Staleness.A));
        yield return new("Coordinator:Async:Staleness:B", Inv(Staleness.B));
        yield return new("Coordinator:Async:MaxContributionsPerFlush", Inv(MaxContributionsPerFlush));
        yield return new("Coordinator:Async:MaxContributionsPerAgent", Inv(MaxContributionsPerAgent));
    }

    /// <summary>Throws <see cref="ScenarioException"/> naming the first invalid value.</summary>
    public void Validate(Scenario scenario, string source)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        void Require(bool ok, string message)
        {
            if (!ok)
            {
                throw new ScenarioException($"Scenario '{source}': {message}");
            }
        }

        string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        Require(Staleness is not null, "'async.staleness' must be an object.");
        Require(StalenessWeighting.Names.Contains(Staleness!.Function), F($"'async.staleness.function' must be one of {string.Join(", ", StalenessWeighting.Names)} (got '{Staleness.Function}')."));
        Require(BufferSize >= 1 && BufferSize <= scenario.Clients, F($"'async.bufferSize' must be between 1 and clients ({scenario.Clients}) (got {BufferSize})."));
        Require(Concurrency >= 1 && Concurrency <= scenario.Clients, F($"'async.concurrency' must be between 1 and clients ({scenario.Clients}) (got {Concurrency})."));
        foreach (var error in ToSettings().ToOptions(0, 0).Validate())
        {
            Require(false, $"'async' is invalid: {error}");
        }

        Require(scenario.Mode != "virtual", "'async' needs mode in-process or multi-process: FedBuff hands tasks to connected agents, and a virtual pool connects only sampled ones.");
        Require(scenario.Strategy.Name == "fedavg" && scenario.Strategy.Options.Count == 0, F($"'async' applies its own server update ('async.serverLearningRate'): 'strategy' must be fedavg without options (got '{scenario.Strategy.Name}')."));
        Require(scenario.Compression.Downlink == "none", "'async' sends each agent the full model of the version it starts from: 'compression.downlink' must be none (uplink codecs work).");
        Require(scenario.Continual is null, "'async' cannot be combined with 'continual' (Fisher consolidation is a synchronous round's step).");
        Require(scenario.FederatedEvaluationFraction == 0, "'async' evaluates on the coordinator only: 'federatedEvaluationFraction' must be 0.");
        if (scenario.Privacy is { } p)
        {
            Require(p.SampleRate == 1, F($"'privacy.sampleRate' must be 1 with 'async': nobody is sampled in secret, so every flush is accounted with q = 1 (got {p.SampleRate})."));
            Require(p.NoiseMultiplier > 0 && p.TargetEpsilon == 0, "'privacy.noiseMultiplier' must be set (and 'privacy.targetEpsilon' 0) with 'async'.");
            Require(p.Adaptive is null && !p.ClipOnAgents, "'privacy' with 'async' supports a fixed bound clipped on the coordinator only (no 'adaptive', no 'clipOnAgents').");
        }
    }
}

/// <summary>The staleness weighting of a scenario's <c>async</c> section.</summary>
public sealed class StalenessSection
{
    /// <summary><c>constant</c>, <c>polynomial</c> ((1+s)^−a) or <c>hinge</c> (1 up to b, then 1/(a(s−b)+1)).</summary>
    public string Function { get; set; } = "polynomial";

    /// <summary>The polynomial's exponent, the hinge's slope.</summary>
    public double A { get; set; } = 0.5;

    /// <summary>The hinge's knee.</summary>
    public double B { get; set; } = 4;
}

/// <summary>
/// Heterogeneous agent speeds on a virtual clock (<c>"speeds"</c>; the coordinator's <c>Coordinator:VirtualClock</c>):
/// each agent's compute time per task is drawn once from <see cref="Distribution"/>, keyed by the scenario's seed, and
/// the coordinator keeps virtual time (a synchronous round lasts as long as its slowest agent; FedBuff applies results
/// in the order of their virtual finishing times). Every metrics row gets <c>virtual_s</c>.
/// </summary>
public sealed class SpeedsSection
{
    /// <summary><c>uniform</c>, <c>loguniform</c> or <c>lognormal</c>.</summary>
    public string Distribution { get; set; } = "loguniform";

    /// <summary>Slowest over fastest compute time (95th over 5th percentile for lognormal).</summary>
    public double Spread { get; set; } = 10;

    /// <summary>The fastest agent's seconds per task (the median's for lognormal).</summary>
    public double Seconds { get; set; } = 10;

    /// <summary>The coordinator's keys.</summary>
    public IEnumerable<KeyValuePair<string, string>> CoordinatorKeys(Scenario scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        yield return new("Coordinator:VirtualClock:Enabled", "true");
        yield return new("Coordinator:VirtualClock:Distribution", Distribution);
        yield return new("Coordinator:VirtualClock:Spread", Spread.ToString(CultureInfo.InvariantCulture));
        yield return new("Coordinator:VirtualClock:Seconds", Seconds.ToString(CultureInfo.InvariantCulture));
        yield return new("Coordinator:VirtualClock:Seed", scenario.Seed.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Throws <see cref="ScenarioException"/> naming the first invalid value.</summary>
    public void Validate(Scenario scenario, string source)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var settings = new VirtualClockSettings { Enabled = true, Distribution = Distribution, Spread = Spread, Seconds = Seconds };
        foreach (var error in settings.Validate())
        {
            throw new ScenarioException($"Scenario '{source}': 'speeds' is invalid: {error.Replace("Coordinator:VirtualClock:", "speeds.", StringComparison.Ordinal)}");
        }

        if (scenario.Stragglers.Fraction > 0)
        {
            throw new ScenarioException($"Scenario '{source}': 'speeds' and 'stragglers' both slow agents down: use one ('speeds' on the virtual clock, 'stragglers' in wall time).");
        }
    }
}
