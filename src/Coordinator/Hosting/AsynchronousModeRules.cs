namespace Federated.Coordinator.Hosting;

/// <summary>The rules of <c>Coordinator:Mode</c>, <c>Coordinator:Async</c> and <c>Coordinator:VirtualClock</c>.</summary>
internal static class AsynchronousModeRules
{
    /// <summary>The modes <c>Coordinator:Mode</c> accepts.</summary>
    public static readonly string[] Modes = ["sync", "fedbuff"];

    /// <summary>Adds what is wrong to <paramref name="errors"/>.</summary>
    public static void Validate(CoordinatorOptions options, List<string> errors)
    {
        if (!Modes.Contains(options.Mode))
        {
            errors.Add($"Coordinator:Mode must be sync or fedbuff, not '{options.Mode}'.");
            return;
        }

        if (options.VirtualClock is null)
        {
            errors.Add("Coordinator:VirtualClock must be a section.");
        }
        else if (options.VirtualClock.Enabled)
        {
            errors.AddRange(options.VirtualClock.Validate());
        }

        if (options.Mode != "fedbuff")
        {
            return;
        }

        if (options.Async is null)
        {
            errors.Add("Coordinator:Async must be a section.");
            return;
        }

        errors.AddRange(options.Async.Validate());
        if (!options.Strategy.Trim().Equals("fedavg", StringComparison.OrdinalIgnoreCase) || options.StrategyOptions.Count > 0)
        {
            errors.Add($"Coordinator:Mode fedbuff applies its own server update (Coordinator:Async:ServerLearningRate): Coordinator:Strategy must be fedavg without options, not '{options.Strategy}'.");
        }

        if (!options.Compression.Downlink.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add("Coordinator:Mode fedbuff sends every agent the full model of the version it starts from: Coordinator:Compression:Downlink must be none (uplink codecs work).");
        }

        if (options.Privacy is { Enabled: true } p)
        {
            if (p.Adaptive.Enabled)
            {
                errors.Add("Coordinator:Mode fedbuff supports fixed clipping only: set Coordinator:Privacy:Adaptive:Enabled=false.");
            }

            if (p.ClipOnAgents)
            {
                errors.Add("Coordinator:Mode fedbuff clips on the coordinator: set Coordinator:Privacy:ClipOnAgents=false.");
            }

            if (!(p.NoiseMultiplier > 0) || p.TargetEpsilon > 0)
            {
                errors.Add("Coordinator:Mode fedbuff needs Coordinator:Privacy:NoiseMultiplier (every flush is one step with q = 1; TargetEpsilon calibration is for sampled rounds).");
            }
        }

        if (options.Continual is { ConsolidateFisher: true })
        {
            errors.Add("Coordinator:Mode fedbuff cannot consolidate Fisher diagonals (Coordinator:Continual:ConsolidateFisher): that is a synchronous round's step.");
        }

        if (options.FederatedEvaluation is { Fraction: > 0 })
        {
            errors.Add("Coordinator:Mode fedbuff evaluates on the coordinator only: set Coordinator:FederatedEvaluation:Fraction=0.");
        }

        if (options.Population != "connected")
        {
            errors.Add("Coordinator:Mode fedbuff hands tasks to connected agents: Coordinator:Population must be connected.");
        }
    }

    /// <summary>
    /// Secure aggregation needs a fixed cohort that unmasks together; a buffer of whoever finished first has none. The
    /// key is read from configuration so that the refusal holds whichever section the secure-aggregation settings use.
    /// </summary>
    public static string? RefuseSecureAggregation(IConfiguration configuration)
    {
        var section = configuration.GetSection(CoordinatorOptions.Section);
        var mode = section[nameof(CoordinatorOptions.Mode)] ?? "sync";
        var secure = section.GetSection("SecureAggregation")["Enabled"];
        return mode.Trim().Equals("fedbuff", StringComparison.OrdinalIgnoreCase) && bool.TryParse(secure, out var on) && on
            ? "Coordinator:Mode fedbuff cannot be combined with Coordinator:SecureAggregation:Enabled: secure aggregation is synchronous-only (its masks cancel only over a fixed cohort that finishes a round together)."
            : null;
    }
}
