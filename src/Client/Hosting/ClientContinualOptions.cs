using System.Globalization;
using Federated.Learning.Continual;

namespace Federated.Client.Hosting;

/// <summary>
/// Federated continual learning on the agent (the <c>Client:Continual</c> section): the agent moves through its own
/// stream of experiences cut from its partition, <see cref="RoundsPerExperience"/> rounds each, starting
/// <see cref="Offset"/> rounds late, with the continual plug-ins of <see cref="Methods"/> in its trainer. Its
/// continual state (Fisher diagonals, anchors, replay buffer, experience counter) lives in the state directory's
/// <c>continual/</c> slot and survives restarts; replay data never leaves the agent. Off while <see cref="Stream"/>
/// is <c>none</c>.
/// </summary>
public sealed class ClientContinualOptions
{
    /// <summary>The method names <see cref="Methods"/> accepts.</summary>
    public static IReadOnlyList<string> MethodNames { get; } = ["ewc", "online-ewc", "replay", "lwf"];

    /// <summary><c>none</c> (default), <c>split-task</c>, <c>split-domain</c>, <c>split-class</c>, <c>permuted</c> or <c>drift</c>.</summary>
    public string Stream { get; set; } = "none";

    /// <summary>Experiences of a <c>permuted</c> stream, steps of a <c>drift</c> stream (split streams have five).</summary>
    public int Experiences { get; set; } = 10;

    /// <summary>Rounds spent on each experience (default 5).</summary>
    public int RoundsPerExperience { get; set; } = 5;

    /// <summary>Rounds this agent starts its stream late (0: in step with the others).</summary>
    public int Offset { get; set; }

    /// <summary>Comma-separated plug-ins: <c>ewc</c> or <c>online-ewc</c>, <c>replay</c>, <c>lwf</c> (empty: fine-tuning).</summary>
    public string Methods { get; set; } = string.Empty;

    /// <summary>EWC's λ.</summary>
    public double EwcLambda { get; set; } = 100;

    /// <summary>Online EWC's decay γ, in (0, 1].</summary>
    public double EwcGamma { get; set; } = 1;

    /// <summary>Examples the Fisher diagonal is estimated on.</summary>
    public int FisherSamples { get; set; } = 1000;

    /// <summary>Replay buffer policy: <c>reservoir</c>, <c>class-balanced</c> (default) or <c>experience-balanced</c>.</summary>
    public string ReplayPolicy { get; set; } = "class-balanced";

    /// <summary>Replay buffer budget, in examples.</summary>
    public int ReplayBudget { get; set; } = 1000;

    /// <summary>Replayed examples added to each batch (0: as many as the batch has).</summary>
    public int ReplayBatchSize { get; set; }

    /// <summary>LwF's α.</summary>
    public double LwfAlpha { get; set; } = 1;

    /// <summary>LwF's temperature T.</summary>
    public double LwfTemperature { get; set; } = 2;

    /// <summary>Seeds the stream's cut (permutations), the Fisher samples and the replay buffer.</summary>
    public int Seed { get; set; }

    /// <summary>True when a stream is configured.</summary>
    public bool Enabled => !string.Equals(Stream, "none", StringComparison.Ordinal);

    /// <summary>The parsed method names, trimmed, lower case, without duplicates.</summary>
    public IReadOnlyList<string> MethodList => (Methods ?? string.Empty)
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(m => m.ToLowerInvariant())
        .Distinct(StringComparer.Ordinal)
        .ToArray();

    /// <summary>EWC's options (null when neither <c>ewc</c> nor <c>online-ewc</c> is asked for).</summary>
    public EwcOptions? Ewc => MethodList.FirstOrDefault(m => m is "ewc" or "online-ewc") is { } ewc
        ? new EwcOptions { Lambda = EwcLambda, Gamma = EwcGamma, Mode = ewc == "ewc" ? EwcMode.Separate : EwcMode.Online, FisherSamples = FisherSamples, Seed = Seed }
        : null;

    /// <summary>Replay's options (null unless <c>replay</c> is asked for).</summary>
    public ReplayOptions? Replay => MethodList.Contains("replay")
        ? new ReplayOptions { Policy = ParsePolicy(ReplayPolicy) ?? Learning.Continual.ReplayPolicy.ClassBalanced, Budget = ReplayBudget, BatchSize = ReplayBatchSize, Seed = Seed }
        : null;

    /// <summary>LwF's options (null unless <c>lwf</c> is asked for).</summary>
    public LwfOptions? Lwf => MethodList.Contains("lwf") ? new LwfOptions { Alpha = LwfAlpha, Temperature = LwfTemperature } : null;

    /// <summary>A copy with <see cref="ReplayBudget"/> set to <paramref name="examples"/> (the memory budget's clamp).</summary>
    public ClientContinualOptions WithReplayBudget(int examples)
    {
        var copy = (ClientContinualOptions)MemberwiseClone();
        copy.ReplayBudget = examples;
        return copy;
    }

    /// <summary>Adds one sentence per broken rule, each naming its key.</summary>
    public void AddErrors(List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (Stream is null || (Stream != "none" && !ContinualStreams.Kinds.Contains(Stream)))
        {
            errors.Add($"Client:Continual:Stream must be none, {string.Join(", ", ContinualStreams.Kinds)}, not '{Stream}'.");
        }

        if (Experiences is < 2 or > 1000)
        {
            errors.Add($"Client:Continual:Experiences must be between 2 and 1000, not {Experiences}.");
        }

        if (RoundsPerExperience is < 1 or > 100_000)
        {
            errors.Add($"Client:Continual:RoundsPerExperience must be between 1 and 100000, not {RoundsPerExperience}.");
        }

        if (Offset is < 0 or > 100_000)
        {
            errors.Add($"Client:Continual:Offset must be between 0 and 100000 rounds, not {Offset}.");
        }

        var methods = MethodList;
        foreach (var method in methods.Where(m => !MethodNames.Contains(m)))
        {
            errors.Add($"Client:Continual:Methods names '{method}'; use {string.Join(", ", MethodNames)}, comma-separated.");
        }

        if (methods.Contains("ewc") && methods.Contains("online-ewc"))
        {
            errors.Add("Client:Continual:Methods may name ewc or online-ewc, not both.");
        }

        if (!(EwcLambda >= 0) || !double.IsFinite(EwcLambda))
        {
            errors.Add($"Client:Continual:EwcLambda must be non-negative and finite, not {EwcLambda.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (!(EwcGamma is > 0 and <= 1))
        {
            errors.Add($"Client:Continual:EwcGamma must be in (0, 1], not {EwcGamma.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (FisherSamples < 1)
        {
            errors.Add($"Client:Continual:FisherSamples must be at least 1, not {FisherSamples}.");
        }

        if (ParsePolicy(ReplayPolicy) is null)
        {
            errors.Add($"Client:Continual:ReplayPolicy must be reservoir, class-balanced or experience-balanced, not '{ReplayPolicy}'.");
        }

        if (ReplayBudget < 1)
        {
            errors.Add($"Client:Continual:ReplayBudget must be at least 1 example, not {ReplayBudget}.");
        }

        if (ReplayBatchSize < 0)
        {
            errors.Add($"Client:Continual:ReplayBatchSize must be 0 (the batch size) or positive, not {ReplayBatchSize}.");
        }

        if (!(LwfAlpha >= 0) || !double.IsFinite(LwfAlpha))
        {
            errors.Add($"Client:Continual:LwfAlpha must be non-negative and finite, not {LwfAlpha.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (!(LwfTemperature > 0) || !double.IsFinite(LwfTemperature))
        {
            errors.Add($"Client:Continual:LwfTemperature must be positive and finite, not {LwfTemperature.ToString(CultureInfo.InvariantCulture)}.");
        }
    }

    private static ReplayPolicy? ParsePolicy(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "reservoir" => Learning.Continual.ReplayPolicy.Reservoir,
        "class-balanced" => Learning.Continual.ReplayPolicy.ClassBalanced,
        "experience-balanced" => Learning.Continual.ReplayPolicy.ExperienceBalanced,
        _ => null,
    };
}
