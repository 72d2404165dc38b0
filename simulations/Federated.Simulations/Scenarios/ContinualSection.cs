using System.Globalization;
using System.Text.Json;
using Federated.Client.Hosting;
using Federated.Learning.Continual;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Federated continual learning (the scenario's <c>continual</c> object; absent = off): every agent moves through its
/// own stream cut from its partition, <see cref="RoundsPerExperience"/> rounds per experience, agent i starting
/// i × <see cref="Stagger"/> rounds late, with the plug-ins of <see cref="Methods"/>; with
/// <see cref="ConsolidateFisher"/> the coordinator consolidates the agents' Fisher diagonals. Maps onto
/// <c>Client:Continual:*</c> and <c>Coordinator:Continual:ConsolidateFisher</c>.
/// </summary>
public sealed class ContinualSection
{
    /// <summary><c>split-task</c>, <c>split-domain</c>, <c>split-class</c>, <c>permuted</c> or <c>drift</c>.</summary>
    public string Stream { get; set; } = "split-class";

    /// <summary>Experiences of a permuted stream, steps of a drift stream (split streams have five).</summary>
    public int Experiences { get; set; } = 10;

    /// <summary>Rounds per experience (default 5).</summary>
    public int RoundsPerExperience { get; set; } = 5;

    /// <summary>Rounds between consecutive agents' starts (0: in step).</summary>
    public int Stagger { get; set; }

    /// <summary>Plug-ins: <c>ewc</c> or <c>online-ewc</c>, <c>replay</c>, <c>lwf</c> (empty: fine-tuning).</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>EWC's λ.</summary>
    public double EwcLambda { get; set; } = 100;

    /// <summary>Online EWC's γ.</summary>
    public double EwcGamma { get; set; } = 1;

    /// <summary>Examples the Fisher diagonal is estimated on.</summary>
    public int FisherSamples { get; set; } = 1000;

    /// <summary><c>reservoir</c>, <c>class-balanced</c> or <c>experience-balanced</c>.</summary>
    public string ReplayPolicy { get; set; } = "class-balanced";

    /// <summary>Each agent's replay budget, in examples (its data never leaves it).</summary>
    public int ReplayBudget { get; set; } = 1000;

    /// <summary>Replayed examples per batch (0: as many as the batch).</summary>
    public int ReplayBatchSize { get; set; }

    /// <summary>LwF's α.</summary>
    public double LwfAlpha { get; set; } = 1;

    /// <summary>LwF's temperature.</summary>
    public double LwfTemperature { get; set; } = 2;

    /// <summary>Consolidate the agents' Fisher diagonals on the coordinator.</summary>
    public bool ConsolidateFisher { get; set; }

    /// <summary>The agents' <c>Client:Continual</c> options for agent <paramref name="index"/>.</summary>
    public ClientContinualOptions ClientOptions(Scenario scenario, int index)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        return new ClientContinualOptions
        {
            Stream = Stream,
            Experiences = Experiences,
            RoundsPerExperience = RoundsPerExperience,
            Offset = checked(index * Stagger),
            Methods = string.Join(',', Methods ?? []),
            EwcLambda = EwcLambda,
            EwcGamma = EwcGamma,
            FisherSamples = FisherSamples,
            ReplayPolicy = ReplayPolicy,
            ReplayBudget = ReplayBudget,
            ReplayBatchSize = ReplayBatchSize,
            LwfAlpha = LwfAlpha,
            LwfTemperature = LwfTemperature,
            Seed = unchecked((int)scenario.Seed),
        };
    }

    /// <summary>Agent <paramref name="index"/>'s <c>Client:Continual:*</c> settings.</summary>
    public IEnumerable<KeyValuePair<string, string>> AgentSettings(Scenario scenario, int index)
    {
        var o = ClientOptions(scenario, index);
        string Inv(IFormattable v) => v.ToString(null, CultureInfo.InvariantCulture);
        yield return new("Client:Continual:Stream", o.Stream);
        yield return new("Client:Continual:Experiences", Inv(o.Experiences));
        yield return new("Client:Continual:RoundsPerExperience", Inv(o.RoundsPerExperience));
        yield return new("Client:Continual:Offset", Inv(o.Offset));
        yield return new("Client:Continual:Methods", o.Methods);
        yield return new("Client:Continual:EwcLambda", Inv(o.EwcLambda));
        yield return new("Client:Continual:EwcGamma", Inv(o.EwcGamma));
        yield return new("Client:Continual:FisherSamples", Inv(o.FisherSamples));
        yield return new("Client:Continual:ReplayPolicy", o.ReplayPolicy);
        yield return new("Client:Continual:ReplayBudget", Inv(o.ReplayBudget));
        yield return new("Client:Continual:ReplayBatchSize", Inv(o.ReplayBatchSize));
        yield return new("Client:Continual:LwfAlpha", Inv(o.LwfAlpha));
        yield return new("Client:Continual:LwfTemperature", Inv(o.LwfTemperature));
        yield return new("Client:Continual:Seed", Inv(o.Seed));
    }

    /// <summary>Experiences in the stream.</summary>
    public int Count => ContinualStreams.IsSplit(Stream) ? 5 : Experiences;

    /// <summary>Throws <see cref="ScenarioException"/> naming the first bad <c>continual.*</c> key.</summary>
    public void Validate(Scenario scenario, string source)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        if (!ContinualStreams.Kinds.Contains(Stream ?? string.Empty))
        {
            throw new ScenarioException($"Scenario '{source}': 'continual.stream' must be one of {string.Join(", ", ContinualStreams.Kinds)} (got '{Stream}').");
        }

        if (Stagger is < 0 or > 100_000)
        {
            throw new ScenarioException($"Scenario '{source}': 'continual.stagger' must be between 0 and 100000 rounds (got {Stagger}).");
        }

        if (ContinualStreams.IsSplit(Stream!) && (scenario.Data.Source == "synthetic" ? scenario.Data.SyntheticClasses : 10) != 10)
        {
            throw new ScenarioException($"Scenario '{source}': 'continual.stream' {Stream} needs 10 classes (data.syntheticClasses is {scenario.Data.SyntheticClasses}).");
        }

        var errors = new List<string>();
        ClientOptions(scenario, Math.Max(0, scenario.Clients - 1)).AddErrors(errors);
        if (errors.Count > 0)
        {
            // "Client:Continual:RoundsPerExperience must …" → "'continual.roundsPerExperience' must …".
            var error = errors[0];
            var key = error.Split(' ')[0];
            var name = key.StartsWith("Client:Continual:", StringComparison.Ordinal)
                ? $"'continual.{JsonNamingPolicy.CamelCase.ConvertName(key["Client:Continual:".Length..])}'"
                : key;
            throw new ScenarioException($"Scenario '{source}': {name}{error[key.Length..]}");
        }
    }
}
