using System.Globalization;
using System.Text.Json.Serialization;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Dashboard;

/// <summary>What <c>{Path}/api/state</c> answers: the run, the round in progress, agents, privacy and every completed round.</summary>
/// <param name="RunId">The run id (empty before the round loop started).</param>
/// <param name="Model">The model architecture.</param>
/// <param name="Strategy">The strategy's configured name.</param>
/// <param name="State"><c>starting</c>, <c>waiting</c> (for agents), <c>running</c> (a round in progress) or <c>finished</c>.</param>
/// <param name="TotalRounds">Rounds the run has in all.</param>
/// <param name="CurrentRound">The round in progress or last completed.</param>
/// <param name="CompletedRounds">Rounds completed (restored ones included).</param>
/// <param name="StopReason">Why a finished run stopped early; empty otherwise.</param>
/// <param name="Round">The round in progress; null when none is.</param>
/// <param name="Agents">Agents known and online.</param>
/// <param name="Privacy">Differential privacy: ε spent so far.</param>
/// <param name="RejectedTotal">Updates rejected so far (at upload or by the aggregation rule), over the recorded rounds.</param>
/// <param name="Rounds">Every completed round, in order.</param>
/// <param name="RefreshSeconds">How often the page polls.</param>
/// <param name="GeneratedAt">When this answer was made.</param>
internal sealed record DashboardState(
    string RunId,
    string Model,
    string Strategy,
    string State,
    int TotalRounds,
    int CurrentRound,
    int CompletedRounds,
    string StopReason,
    RoundProgress? Round,
    AgentsView Agents,
    PrivacyView Privacy,
    long RejectedTotal,
    IReadOnlyList<RoundPoint> Rounds,
    double RefreshSeconds,
    DateTimeOffset GeneratedAt);

/// <summary>The round in progress.</summary>
/// <param name="Round">Its number.</param>
/// <param name="Selected">Agents asked to train.</param>
/// <param name="Results">Results accepted so far.</param>
/// <param name="Failures">Failures so far.</param>
/// <param name="StartedAt">When it started.</param>
internal sealed record RoundProgress(int Round, int Selected, int Results, int Failures, DateTimeOffset? StartedAt);

/// <summary>The agents the coordinator knows.</summary>
/// <param name="Online">Agents with an open session.</param>
/// <param name="Known">Agents known (pre-registered or enrolled).</param>
/// <param name="Revoked">Revoked agents among them.</param>
/// <param name="List">The first <see cref="DashboardStateBuilder.MaxAgentsListed"/> agents, online ones first.</param>
/// <param name="Truncated">True when <paramref name="List"/> leaves agents out.</param>
internal sealed record AgentsView(int Online, int Known, int Revoked, IReadOnlyList<AgentView> List, bool Truncated);

/// <summary>One agent.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Online">True with an open session.</param>
/// <param name="Revoked">True once revoked.</param>
/// <param name="LastSeenSecondsAgo">Seconds since it was last heard from (this process); null when never.</param>
internal sealed record AgentView(string Id, bool Online, bool Revoked, double? LastSeenSecondsAgo);

/// <summary>Differential privacy.</summary>
/// <param name="Enabled">True for a differentially private run.</param>
/// <param name="Epsilon">ε spent after the last completed round; null without differential privacy or before a round.</param>
/// <param name="Delta">δ at which ε is reported.</param>
/// <param name="Budget">ε_max; null without a budget.</param>
internal sealed record PrivacyView(bool Enabled, double? Epsilon, double? Delta, double? Budget);

/// <summary>One completed round (a row of <c>rounds.csv</c>); null where the row has no value.</summary>
/// <param name="Round">The round.</param>
/// <param name="Ok">True when it released a new global model.</param>
/// <param name="Selected">Agents asked to train.</param>
/// <param name="Results">Results accepted.</param>
/// <param name="Failures">Failures.</param>
/// <param name="Rejected">Updates rejected.</param>
/// <param name="TestAccuracy">Held-out accuracy of the new global model.</param>
/// <param name="TestLoss">Held-out loss.</param>
/// <param name="TrainLoss">The agents' training loss, weighted by examples.</param>
/// <param name="BytesUp">Wire bytes from agents.</param>
/// <param name="BytesDown">Wire bytes to agents.</param>
/// <param name="Epsilon">ε spent after the round.</param>
/// <param name="WallSeconds">The round's wall time.</param>
internal sealed record RoundPoint(
    int Round, bool Ok, int? Selected, int? Results, int? Failures, int? Rejected,
    double? TestAccuracy, double? TestLoss, double? TrainLoss, long? BytesUp, long? BytesDown, double? Epsilon, double? WallSeconds);

/// <summary>Source-generated JSON for the dashboard (camelCase).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(DashboardState))]
internal sealed partial class DashboardJsonContext : JsonSerializerContext;

/// <summary>Builds a <see cref="DashboardState"/> from what the coordinator already keeps.</summary>
internal sealed class DashboardStateBuilder(IOptions<CoordinatorOptions> options, RunStatus status, RoundHistory history, AgentRegistry registry, TimeProvider time)
{
    /// <summary>Most agents listed one by one.</summary>
    public const int MaxAgentsListed = 200;

    /// <summary>The state now.</summary>
    public DashboardState Build()
    {
        var o = options.Value;
        var rounds = history.Rows.Select(ToPoint).Where(p => p is not null).Select(p => p!).OrderBy(p => p.Round).ToList();
        var now = time.GetTimestamp();
        var agents = registry.KnownIds().Select(id => registry.Find(id)).Where(a => a is not null).Select(a => new AgentView(
            a!.Id,
            a.Connection is not null,
            a.Revoked,
            a.LastSeen == 0 ? null : Math.Round(time.GetElapsedTime(a.LastSeen, now).TotalSeconds, 1))).ToList();
        var listed = agents.OrderByDescending(a => a.Online).ThenBy(a => a.Id, StringComparer.Ordinal).Take(MaxAgentsListed).ToList();
        var inProgress = !status.Finished && status.RunId.Length > 0 && status.CurrentRound > status.CompletedRounds;
        var state = status.Finished ? "finished" : status.RunId.Length == 0 ? "starting" : inProgress ? "running" : "waiting";
        var privacy = o.Privacy is { Enabled: true } p
            ? new PrivacyView(true, rounds.LastOrDefault(r => r.Epsilon is not null)?.Epsilon, p.Delta, p.EpsilonBudget > 0 ? p.EpsilonBudget : null)
            : new PrivacyView(false, null, null, null);
        return new DashboardState(
            status.RunId,
            o.Model,
            o.Strategy,
            state,
            status.TotalRounds > 0 ? status.TotalRounds : o.Rounds,
            status.CurrentRound,
            status.CompletedRounds,
            status.StopReason,
            inProgress ? new RoundProgress(status.CurrentRound, status.RoundSelected, status.RoundResults, status.RoundFailures, status.RoundStartedAt) : null,
            new AgentsView(agents.Count(a => a.Online), agents.Count, agents.Count(a => a.Revoked), listed, listed.Count < agents.Count),
            privacy,
            rounds.Sum(r => (long)(r.Rejected ?? 0)),
            rounds,
            o.Dashboard.RefreshSeconds,
            time.GetUtcNow());
    }

    /// <summary>A <c>rounds.csv</c> row as a point; null when it has no round number.</summary>
    internal static RoundPoint? ToPoint(IReadOnlyDictionary<string, string> row)
    {
        if (Int(row, "round") is not { } round)
        {
            return null;
        }

        return new RoundPoint(
            round,
            row.GetValueOrDefault("ok") == "true",
            Int(row, "selected"),
            Int(row, "results"),
            Int(row, "failures"),
            Int(row, "rejected"),
            Real(row, "test_accuracy"),
            Real(row, "test_loss"),
            Real(row, "train_loss"),
            Long(row, "up_wire_bytes_total"),
            Long(row, "down_wire_bytes_total"),
            Real(row, "epsilon"),
            Real(row, "wall_s"));
    }

    private static int? Int(IReadOnlyDictionary<string, string> row, string key) =>
        row.TryGetValue(key, out var v) && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i : null;

    private static long? Long(IReadOnlyDictionary<string, string> row, string key) =>
        row.TryGetValue(key, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? (long)Math.Round(d) : null;

    // NaN and infinities (a round without evaluation writes NaN) become null: JSON has no NaN.
    private static double? Real(IReadOnlyDictionary<string, string> row, string key) =>
        row.TryGetValue(key, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d : null;
}
