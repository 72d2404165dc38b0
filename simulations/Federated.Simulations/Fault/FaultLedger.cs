using System.Globalization;
using System.Text.RegularExpressions;

namespace Federated.Simulations.Fault;

/// <summary>
/// What a fault-suite run did with every update, read off its logs and its <c>rounds.csv</c>. The agents log each update
/// they delivered with its result (event 2205, per agent and round); the coordinator logs what became of each result
/// it received (accepted into the round's aggregate, 1121; rejected, 1107; late and dropped, 1108) and where each round
/// began (1103); <c>rounds.csv</c> holds one row per completed round with the number of results it aggregated.
/// <list type="bullet">
/// <item>Lost: results the coordinator accepted during a round's last execution beyond those its committed row
/// aggregated (must be 0).</item>
/// <item>Re-collected after a crash: results accepted by a coordinator process that was then killed before the round
/// committed; the restarted coordinator runs that round again and collects fresh updates.</item>
/// <item>Undelivered: results an agent sent whose fate the coordinator never logged (a result in flight when a link
/// was cut, or a log line a killed coordinator had not yet written).</item>
/// </list>
/// </summary>
internal sealed partial class FaultLedger
{
    /// <summary>The line a fault injector writes into a log where it killed the process.</summary>
    public const string CrashMarker = "=== fault:";

    /// <summary>Rounds that ran to their end (rows of rounds.csv), those that failed cleanly among them.</summary>
    public int CommittedRounds { get; private init; }

    public int FailedRounds { get; private init; }

    public int Delivered { get; private init; }

    public int Aggregated { get; private init; }

    public int Late { get; private init; }

    public int HostileRejected { get; private init; }

    public int HostileAccepted { get; private init; }

    public int RecollectedAfterCrash { get; private init; }

    public int Undelivered { get; private init; }

    public int Lost { get; private init; }

    public int Inconsistent { get; private init; }

    public IReadOnlyList<string> RejectionReasons { get; private init; } = [];

    [GeneratedRegex(@"^(trce|dbug|info|warn|fail|crit): \S+\[(\d+)\]$")]
    private static partial Regex Header();

    [GeneratedRegex(@"^Round (\d+): update of agent (\S+) accepted")]
    private static partial Regex Accepted();

    [GeneratedRegex(@"^Round (\d+): update of agent (\S+) rejected: (.*)$")]
    private static partial Regex Rejected();

    [GeneratedRegex(@"^Late result of round (\d+) from agent (\S+) dropped")]
    private static partial Regex LateResult();

    [GeneratedRegex(@"^Round (\d+): \d+ of \d+ agents asked")]
    private static partial Regex RoundStarted();

    [GeneratedRegex(@"^Delivered \S+ \(round (\d+)\) and its result")]
    private static partial Regex DeliveredUpdate();

    /// <summary>The events of a console log: (event id, message), in order; a crash marker is event -1.</summary>
    public static IEnumerable<(int EventId, string Message)> Events(string path)
    {
        if (!File.Exists(path))
        {
            yield break;
        }

        var lines = File.ReadAllLines(path);
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith(CrashMarker, StringComparison.Ordinal))
            {
                yield return (-1, lines[i]);
            }
            else if (Header().Match(lines[i]) is { Success: true } header && i + 1 < lines.Length)
            {
                yield return (int.Parse(header.Groups[2].Value, CultureInfo.InvariantCulture), lines[i + 1].Trim());
            }
        }
    }

    /// <summary>Reads the run in <paramref name="directory"/> (its coordinator log, agent logs and rounds.csv).</summary>
    public static FaultLedger Read(string directory, int agents, string hostileId)
    {
        // The coordinator's events, numbered so that "after round r last began" can be told.
        var events = Events(Path.Combine(directory, "coordinator.log")).Select((e, i) => (Index: i, e.EventId, e.Message)).ToList();
        var lastStart = new Dictionary<int, int>();
        var decided = new Dictionary<(string Agent, int Round), int>();
        var lateResults = new Dictionary<(string Agent, int Round), int>();
        var accepted = new List<(int Index, int Round, string Agent)>();
        var late = 0;
        var hostileRejected = 0;
        var reasons = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (index, id, message) in events)
        {
            if (id == 1103 && RoundStarted().Match(message) is { Success: true } started)
            {
                lastStart[Int(started.Groups[1].Value)] = index;
            }
            else if (id == 1121 && Accepted().Match(message) is { Success: true } a)
            {
                accepted.Add((index, Int(a.Groups[1].Value), a.Groups[2].Value));
                Count(decided, a.Groups[2].Value, Int(a.Groups[1].Value));
            }
            else if (id == 1107 && Rejected().Match(message) is { Success: true } r)
            {
                Count(decided, r.Groups[2].Value, Int(r.Groups[1].Value));
                if (r.Groups[2].Value == hostileId)
                {
                    hostileRejected++;
                    reasons.Add(Shorten(r.Groups[3].Value));
                }
            }
            else if (id == 1108 && LateResult().Match(message) is { Success: true } l)
            {
                // A late result may be an update or a failure report (a task whose model was no longer served).
                Count(lateResults, l.Groups[2].Value, Int(l.Groups[1].Value));
            }
        }

        static void Count(Dictionary<(string, int), int> counts, string agent, int round) => counts[(agent, round)] = counts.GetValueOrDefault((agent, round)) + 1;

        // Completed rounds and what each aggregated.
        var results = new Dictionary<int, int>();
        var failed = 0;
        var rounds = 0;
        var csv = Path.Combine(directory, "coordinator", "rounds.csv");
        if (File.Exists(csv))
        {
            var lines = File.ReadAllLines(csv).Where(l => l.Length > 0).ToArray();
            var header = lines[0].Split(',');
            int Column(string name) => Array.IndexOf(header, name);
            foreach (var row in lines.Skip(1).Select(l => l.Split(',')))
            {
                rounds++;
                if (row[Column("ok")] != "true")
                {
                    failed++;
                    continue;
                }

                results[Int(row[Column("round")])] = Int(row[Column("results")]);
            }
        }

        var lost = 0;
        var inconsistent = 0;
        var recollected = 0;
        var aggregated = 0;
        foreach (var (round, count) in results)
        {
            var start = lastStart.GetValueOrDefault(round, -1);
            var final = accepted.Where(a => a.Round == round && a.Index > start).Select(a => a.Agent).Distinct().Count();
            lost += Math.Max(0, final - count);
            inconsistent += Math.Max(0, count - final);
            aggregated += count - accepted.Count(a => a.Round == round && a.Index > start && a.Agent == hostileId);
        }

        // Accepted by a coordinator process that was killed before the round committed; the round ran again.
        recollected = accepted.Count(a => lastStart.TryGetValue(a.Round, out var start) && a.Index < start);

        // What the honest agents delivered, and whether the coordinator logged a fate for it.
        var delivered = 0;
        var undelivered = 0;
        for (var i = 0; i < agents; i++)
        {
            var agent = Scenarios.FederationPlan.AgentId(i);
            foreach (var group in Events(Path.Combine(directory, FormattableString.Invariant($"agent-{i:D4}.log")))
                         .Where(e => e.EventId == 2205)
                         .Select(e => DeliveredUpdate().Match(e.Message))
                         .Where(m => m.Success)
                         .GroupBy(m => Int(m.Groups[1].Value)))
            {
                // Updates the coordinator decided on in time first; late results cover what remains (a late result
                // beyond that was a failure report, not an update).
                var count = group.Count();
                var open = Math.Max(0, count - decided.GetValueOrDefault((agent, group.Key)));
                var lateUpdates = Math.Min(open, lateResults.GetValueOrDefault((agent, group.Key)));
                delivered += count;
                late += lateUpdates;
                undelivered += open - lateUpdates;
            }
        }

        return new FaultLedger
        {
            CommittedRounds = rounds,
            FailedRounds = failed,
            Delivered = delivered,
            Aggregated = aggregated,
            Late = late,
            HostileRejected = hostileRejected,
            HostileAccepted = accepted.Count(a => a.Agent == hostileId),
            RecollectedAfterCrash = recollected,
            Undelivered = undelivered,
            Lost = lost,
            Inconsistent = inconsistent,
            RejectionReasons = [.. reasons],
        };
    }

    /// <summary>One sentence on the run.</summary>
    public string Describe()
    {
        var text = FormattableString.Invariant($"{CommittedRounds} rounds completed ({FailedRounds} of them failed cleanly, the model unchanged), {Delivered} honest updates delivered, {Aggregated} aggregated, {Late} late");
        if (RecollectedAfterCrash > 0)
        {
            text += FormattableString.Invariant($", {RecollectedAfterCrash} accepted by the killed coordinator and re-collected");
        }

        if (Undelivered > 0)
        {
            text += FormattableString.Invariant($", {Undelivered} delivered but never logged by the coordinator");
        }

        if (Inconsistent > 0)
        {
            text += FormattableString.Invariant($", {Inconsistent} aggregated results with no acceptance logged");
        }

        if (RejectionReasons.Count > 0)
        {
            text += "; hostile updates rejected: " + string.Join(" | ", RejectionReasons);
        }

        return text;
    }

    private static int Int(string text) => int.Parse(text, CultureInfo.InvariantCulture);

    private static string Shorten(string reason)
    {
        // Rejections name the agent and the transfer: keep the part that says why.
        var text = Regex.Replace(reason, @"'[^']*'", "'…'");
        return text.Length > 140 ? text[..140] + "…" : text;
    }
}
