using System.Globalization;
using Federated.Client.Attacks;

namespace Federated.Client.Hosting;

/// <summary>
/// The <c>Client:Attack</c> section: turns the agent into a Byzantine one for robustness experiments (the simulator
/// sets it on the agents a scenario's <c>attack</c> section picks). Off (<c>none</c>) unless set. From
/// <see cref="StartRound"/> on, the agent trains as usual (on flipped labels for <c>labelflip</c>) and then replaces
/// the delta it uploads; see <see cref="AttackStage"/> for what each kind sends.
/// </summary>
public sealed class ClientAttackOptions
{
    /// <summary>The kinds <see cref="Kind"/> accepts.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["none", "signflip", "scaling", "noise", "labelflip", "zero", "alie", "ipm"];

    /// <summary><c>none</c>, <c>signflip</c>, <c>scaling</c>, <c>noise</c>, <c>labelflip</c>, <c>zero</c>, <c>alie</c> or <c>ipm</c>.</summary>
    public string Kind { get; set; } = "none";

    /// <summary>The first round the agent attacks in; before it, the agent is honest.</summary>
    public int StartRound { get; set; } = 1;

    /// <summary>Multiplier: signflip sends −scale·Δ (default 1), scaling sends scale·Δ (default 10).</summary>
    public double? Scale { get; set; }

    /// <summary>Standard deviation of the noise that replaces the delta (<c>noise</c>).</summary>
    public double Sigma { get; set; } = 1;

    /// <summary>ALIE's z; when unset it follows from <see cref="Clients"/> and <see cref="Attackers"/> (Baruch et al.).</summary>
    public double? Z { get; set; }

    /// <summary>IPM's ε: the attackers send −ε times the honest mean.</summary>
    public double Epsilon { get; set; } = 0.1;

    /// <summary>
    /// Where ALIE and IPM get the honest updates: <c>omniscient</c> (the round's honest updates, from a colluding
    /// channel only the in-process simulator provides) or <c>estimated</c> (<see cref="EstimateRuns"/> local runs on
    /// bootstrap resamples of the agent's own data).
    /// </summary>
    public string Variant { get; set; } = "omniscient";

    /// <summary>n of ALIE's z formula: the updates aggregated per round.</summary>
    public int Clients { get; set; }

    /// <summary>f of ALIE's z formula: the colluding attackers among them.</summary>
    public int Attackers { get; set; }

    /// <summary>Local runs on bootstrap resamples behind the <c>estimated</c> variant's mean and deviation (at least 2).</summary>
    public int EstimateRuns { get; set; } = 3;

    /// <summary>How long an omniscient attacker waits for the round's honest updates before it uses what it has.</summary>
    public double WaitSeconds { get; set; } = 120;

    /// <summary>Seed of the noise draws (mixed with the agent id and the round).</summary>
    public long Seed { get; set; }

    /// <summary>The parsed kind (valid after validation).</summary>
    public AttackKind ParsedKind => Kind.Trim().ToLowerInvariant() switch
    {
        "none" or "" => AttackKind.None,
        "signflip" => AttackKind.SignFlip,
        "scaling" => AttackKind.Scaling,
        "noise" => AttackKind.Noise,
        "labelflip" => AttackKind.LabelFlip,
        "zero" => AttackKind.Zero,
        "alie" => AttackKind.Alie,
        "ipm" => AttackKind.Ipm,
        _ => throw new ArgumentException($"Client:Attack:Kind must be one of {string.Join(", ", Kinds)}, not '{Kind}'."),
    };

    /// <summary>True for the omniscient variant of ALIE and IPM.</summary>
    public bool IsOmniscient => string.Equals(Variant?.Trim(), "omniscient", StringComparison.OrdinalIgnoreCase);

    /// <summary>The multiplier in effect: <see cref="Scale"/>, or 1 for signflip and 10 for scaling.</summary>
    public double ResolvedScale => Scale ?? (ParsedKind == AttackKind.Scaling ? 10 : 1);

    /// <summary>ALIE's z in effect: <see cref="Z"/>, or the paper's formula for <see cref="Clients"/> and <see cref="Attackers"/>.</summary>
    public double ResolvedZ => Z ?? UpdateAttacks.AlieZ(Clients, Attackers);

    /// <summary>A short description for logs and reports, e.g. <c>signflip scale 1 from round 1</c>.</summary>
    public string Describe()
    {
        var ci = CultureInfo.InvariantCulture;
        var kind = ParsedKind;
        var detail = kind switch
        {
            AttackKind.SignFlip or AttackKind.Scaling => string.Create(ci, $" scale {ResolvedScale}"),
            AttackKind.Noise => string.Create(ci, $" sigma {Sigma}"),
            AttackKind.Alie => string.Create(ci, $" z {ResolvedZ:G4} ({Variant.Trim().ToLowerInvariant()})"),
            AttackKind.Ipm => string.Create(ci, $" epsilon {Epsilon} ({Variant.Trim().ToLowerInvariant()})"),
            _ => "",
        };
        return string.Create(ci, $"{kind.ToString().ToLowerInvariant()}{detail} from round {StartRound}");
    }

    internal void AddErrors(List<string> errors)
    {
        var kind = Kind?.Trim().ToLowerInvariant();
        if (kind is null || !(kind.Length == 0 || Kinds.Contains(kind)))
        {
            errors.Add($"Client:Attack:Kind must be one of {string.Join(", ", Kinds)}, not '{Kind}'.");
            return;
        }

        if (StartRound < 1)
        {
            errors.Add($"Client:Attack:StartRound must be 1 or later, not {StartRound}.");
        }

        if (Scale is { } scale && !(scale > 0 && double.IsFinite(scale)))
        {
            errors.Add($"Client:Attack:Scale must be a positive number, not {scale}.");
        }

        if (!(Sigma > 0 && double.IsFinite(Sigma)))
        {
            errors.Add($"Client:Attack:Sigma must be a positive number, not {Sigma}.");
        }

        if (!(Epsilon > 0 && double.IsFinite(Epsilon)))
        {
            errors.Add($"Client:Attack:Epsilon must be a positive number, not {Epsilon}.");
        }

        if (Z is { } z && !double.IsFinite(z))
        {
            errors.Add($"Client:Attack:Z must be a finite number, not {z}.");
        }

        var variant = Variant?.Trim().ToLowerInvariant();
        if (variant is not ("omniscient" or "estimated"))
        {
            errors.Add($"Client:Attack:Variant must be omniscient or estimated, not '{Variant}'.");
        }

        if (kind == "alie" && Z is null)
        {
            try
            {
                UpdateAttacks.AlieZ(Clients, Attackers);
            }
            catch (ArgumentOutOfRangeException)
            {
                errors.Add($"Client:Attack:Z is unset, so ALIE computes it from Client:Attack:Clients (n, at least 2) and Client:Attack:Attackers (f, 1 ≤ f < ⌊n/2 + 1⌋), not n = {Clients}, f = {Attackers}.");
            }
        }

        if (EstimateRuns is < 2 or > 100)
        {
            errors.Add($"Client:Attack:EstimateRuns must be between 2 and 100, not {EstimateRuns}.");
        }

        if (!(WaitSeconds > 0 && WaitSeconds <= 86_400))
        {
            errors.Add($"Client:Attack:WaitSeconds must be positive (at most a day), not {WaitSeconds}.");
        }
    }
}
