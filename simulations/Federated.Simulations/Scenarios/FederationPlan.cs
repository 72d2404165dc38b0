using System.Globalization;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Turns a scenario into the settings of one coordinator and N agents: the same keys the shipped programs read from
/// configuration, whether they run as hosts in this process or as separate processes.
/// </summary>
public static class FederationPlan
{
    private static string Inv(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);

    /// <summary>The coordinator's settings.</summary>
    public static Dictionary<string, string> Coordinator(Scenario scenario, string stateDirectory)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var s = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Coordinator:StateDirectory"] = stateDirectory,
            ["Coordinator:Resume"] = "false",
            ["Coordinator:ExitWhenDone"] = "true",
            ["Coordinator:Model"] = scenario.Model,
            ["Coordinator:NumClasses"] = Inv(scenario.Data.Source == "synthetic" ? scenario.Data.SyntheticClasses : 10),
            ["Coordinator:Seed"] = Inv(scenario.Seed),
            ["Coordinator:Rounds"] = Inv(scenario.Rounds),
            ["Coordinator:Strategy"] = scenario.Strategy.Name,
            ["Coordinator:MinAvailable"] = Inv(scenario.Clients),
            ["Coordinator:MinFit"] = Inv(scenario.ResolvedMinResults),
            ["Coordinator:FractionFit"] = Inv((double)scenario.ResolvedSampled / scenario.Clients),
            ["Coordinator:RoundDeadlineSeconds"] = Inv(scenario.RoundDeadlineSeconds),
            ["Coordinator:WaitForAgentsSeconds"] = "600",
            ["Coordinator:Training:Epochs"] = Inv(scenario.Training.Epochs),
            ["Coordinator:Training:BatchSize"] = Inv(scenario.Training.BatchSize),
            ["Coordinator:Training:Optimizer"] = scenario.Training.Optimizer,
            ["Coordinator:Training:LearningRate"] = Inv(scenario.Training.LearningRate),
            ["Coordinator:Training:Momentum"] = Inv(scenario.Training.Momentum),
            ["Coordinator:Training:WeightDecay"] = Inv(scenario.Training.WeightDecay),
            ["Coordinator:Evaluation:Source"] = scenario.Data.Source,
            ["Coordinator:Evaluation:Normalization"] = scenario.Data.Normalization,
            ["Coordinator:FederatedEvaluation:Fraction"] = Inv(scenario.FederatedEvaluationFraction),
            ["Coordinator:Deterministic"] = scenario.Deterministic ? "true" : "false",
            // Every agent runs on this machine and talks to 127.0.0.1: plaintext from loopback only, and open enrolment
            // (each agent still creates its Ed25519 key and signs its enrolment and session challenges). No rate
            // limit: a virtual federation enrols its sampled agents every round.
            ["Coordinator:Security:Mode"] = "open",
            ["Coordinator:Security:Plaintext"] = "loopback",
            ["Coordinator:Security:EnrolmentsPerMinute"] = "0",
        };
        if (scenario.Mode == "virtual")
        {
            // Sample every enrolled agent; the simulator's pool materialises the sampled ones.
            s["Coordinator:Population"] = "enrolled";
            s["Coordinator:RosterFile"] = RosterPath(stateDirectory);
        }

        if (scenario.Data.Source == "idx")
        {
            s["Coordinator:Evaluation:Directory"] = scenario.Data.ResolvedDirectory;
        }

        foreach (var (key, value) in scenario.Strategy.Options)
        {
            s[$"Coordinator:StrategyOptions:{key}"] = value;
        }

        if (scenario.Privacy is { } privacy)
        {
            // Poisson sampling replaces the fixed fraction, and the noised mean is released whatever the count.
            s["Coordinator:FractionFit"] = "1";
            s["Coordinator:MinFit"] = "1";
            foreach (var (key, value) in privacy.CoordinatorKeys(scenario))
            {
                s[key] = value;
            }
        }

        foreach (var (key, value) in scenario.SecureAggregation?.CoordinatorKeys() ?? [])
        {
            s[key] = value;
        }

        s["Coordinator:Compression:Uplink"] = scenario.Compression.Uplink;
        s["Coordinator:Compression:Downlink"] = scenario.Compression.Downlink;
        s["Coordinator:Compression:ErrorFeedback"] = scenario.Compression.ErrorFeedback ? "true" : "false";
        s["Coordinator:Continual:ConsolidateFisher"] = scenario.Continual is { ConsolidateFisher: true } ? "true" : "false";
        if (scenario.Continual is { } continual)
        {
            // The coordinator cuts the same experiences from its test set to measure the global model on each.
            s["Coordinator:Continual:Stream"] = continual.Stream;
            s["Coordinator:Continual:Experiences"] = Inv(continual.Experiences);
            s["Coordinator:Continual:Seed"] = Inv(unchecked((int)scenario.Seed));
        }

        foreach (var (key, value) in scenario.Async?.CoordinatorKeys() ?? [])
        {
            s[key] = value;
        }

        foreach (var (key, value) in scenario.Speeds?.CoordinatorKeys(scenario) ?? [])
        {
            s[key] = value;
        }

        return s;
    }

    /// <summary>Agent <paramref name="index"/>'s id.</summary>
    public static string AgentId(int index) => Inv(index).PadLeft(4, '0').Insert(0, "agent-");

    /// <summary>The index of the agent named <paramref name="agentId"/> by <see cref="AgentId"/>.</summary>
    /// <exception cref="ArgumentException">Not an id this plan made.</exception>
    public static int AgentIndex(string agentId) =>
        agentId is not null && agentId.StartsWith("agent-", StringComparison.Ordinal)
        && int.TryParse(agentId.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out var index) && AgentId(index) == agentId
            ? index
            : throw new ArgumentException($"'{agentId}' is not a simulated agent id (agent-0000, agent-0001, …).", nameof(agentId));

    /// <summary>Where the coordinator's roster of every simulated agent id lives (virtual mode).</summary>
    public static string RosterPath(string stateDirectory) => Path.Combine(stateDirectory, "roster.txt");

    /// <summary>Writes the roster of the scenario's agent ids for the coordinator (virtual mode).</summary>
    public static void WriteRoster(Scenario scenario, string stateDirectory)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        Directory.CreateDirectory(stateDirectory);
        File.WriteAllLines(RosterPath(stateDirectory), Enumerable.Range(0, scenario.Clients).Select(AgentId));
    }

    /// <summary>Agent <paramref name="index"/>'s settings.</summary>
    public static Dictionary<string, string> Agent(Scenario scenario, int index, string coordinatorAddress, string stateDirectory)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var s = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Client:CoordinatorAddress"] = coordinatorAddress,
            ["Client:AgentId"] = AgentId(index),
            ["Client:Device"] = "cpu",
            ["Client:Threads"] = Inv(scenario.AgentThreads),
            ["Client:StateDirectory"] = stateDirectory,
            ["Client:ReconnectMinSeconds"] = "0.2",
            ["Client:ReconnectMaxSeconds"] = "5",
            ["Client:Data:Source"] = scenario.Data.Source,
            ["Client:Data:Partition"] = scenario.Data.Partition,
            ["Client:Data:Clients"] = Inv(scenario.Clients),
            ["Client:Data:Index"] = Inv(index),
            ["Client:Data:Seed"] = Inv(scenario.Seed),
            ["Client:Data:MaxExamples"] = Inv(scenario.Data.MaxExamplesPerClient),
            ["Client:Data:LocalTestFraction"] = Inv(scenario.Data.LocalTestFraction),
            ["Client:Data:Normalization"] = scenario.Data.Normalization,
            ["Client:Data:SyntheticCount"] = Inv(scenario.Data.SyntheticCount),
            ["Client:Data:SyntheticClasses"] = Inv(scenario.Data.SyntheticClasses),
        };
        if (scenario.Data.Source == "idx")
        {
            s["Client:Data:Directory"] = scenario.Data.ResolvedDirectory;
        }

        s["Client:Simulation:DropoutProbability"] = Inv(scenario.Dropout);
        s["Client:Simulation:Seed"] = Inv(scenario.Seed);
        s["Client:Simulation:Slowdown"] = Inv(scenario.Stragglers.Choose(scenario.Clients, scenario.Seed).Contains(index) ? scenario.Stragglers.Slowdown : 1.0);
        foreach (var (key, value) in scenario.Attack.AgentSettings(scenario, index))
        {
            s[key] = value;
        }

        foreach (var (key, value) in scenario.SecureAggregation?.AgentSettings(index) ?? [])
        {
            s[key] = value;
        }

        foreach (var (key, value) in scenario.Continual?.AgentSettings(scenario, index) ?? [])
        {
            s[key] = value;
        }

        return s;
    }
}
