using System.Text.Json;
using System.Text.Json.Serialization;

namespace Federated.Learning.Privacy;

/// <summary>
/// <paramref name="Steps"/> steps of the sampled Gaussian mechanism with sampling rate q and noise multiplier z, or,
/// when <see cref="SkellamVariance"/> is set, of the Skellam mechanism (<see cref="SkellamAccountant"/>; q and z are
/// then 1 and 0 and unused: no amplification by sampling is claimed).
/// </summary>
/// <param name="SampleRate">q, the Poisson sampling rate, in [0, 1].</param>
/// <param name="NoiseMultiplier">z, the noise standard deviation over the L2 sensitivity (the clipping bound).</param>
/// <param name="Steps">How many steps (rounds) ran with these parameters.</param>
public sealed record PrivacyLedgerEntry(
    [property: JsonPropertyName("q")] double SampleRate,
    [property: JsonPropertyName("z")] double NoiseMultiplier,
    [property: JsonPropertyName("steps")] long Steps)
{
    /// <summary>μ: the Skellam noise variance per coordinate of the released integer sum; null for a Gaussian entry.</summary>
    [JsonPropertyName("skellam_mu")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? SkellamVariance { get; init; }

    /// <summary>Δ1: the L1 sensitivity of the released integer sum (Skellam entries).</summary>
    [JsonPropertyName("skellam_l1")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? L1Sensitivity { get; init; }

    /// <summary>Δ2: the L2 sensitivity of the released integer sum (Skellam entries).</summary>
    [JsonPropertyName("skellam_l2")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? L2Sensitivity { get; init; }

    /// <summary><paramref name="steps"/> releases of the Skellam mechanism with variance μ and sensitivities Δ1, Δ2 (integer units).</summary>
    public static PrivacyLedgerEntry Skellam(double variance, double l1Sensitivity, double l2Sensitivity, long steps = 1) =>
        new(1, 0, steps) { SkellamVariance = variance, L1Sensitivity = l1Sensitivity, L2Sensitivity = l2Sensitivity };

    /// <summary>The RDP curve of this entry over <paramref name="orders"/>.</summary>
    public double[] Rdp(IReadOnlyList<double> orders) => SkellamVariance is { } mu
        ? SkellamAccountant.Rdp(mu, L1Sensitivity ?? 0, L2Sensitivity ?? 0, Steps, orders)
        : RdpAccountant.Rdp(SampleRate, NoiseMultiplier, Steps, orders);

    /// <summary>Whether <paramref name="other"/> has the same mechanism and parameters (its steps aside).</summary>
    public bool SameMechanism(PrivacyLedgerEntry other) => other is not null && this with { Steps = 0 } == other with { Steps = 0 };
}

/// <summary>
/// The privacy spent so far, as a list of (q, z, steps) entries (heterogeneous rounds compose: their RDP curves add),
/// with ε(δ) over a grid of orders and a budget check. Plain data for checkpoints: <see cref="Entries"/> and
/// <see cref="ToJson"/>/<see cref="FromJson"/> round-trip every double exactly. Not thread-safe.
/// </summary>
public sealed class PrivacyLedger
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    private readonly List<PrivacyLedgerEntry> _entries = [];

    /// <summary>A ledger holding <paramref name="entries"/> (none when null), evaluated over <paramref name="orders"/> (<see cref="RdpOrders.Default"/> when null).</summary>
    public PrivacyLedger(IEnumerable<PrivacyLedgerEntry>? entries = null, IReadOnlyList<double>? orders = null, EpsilonConversion conversion = EpsilonConversion.Balle2020)
    {
        Orders = orders ?? RdpOrders.Default;
        if (Orders.Count == 0 || Orders.Any(o => !(o > 1)))
        {
            throw new ArgumentException("The Rényi orders must be a non-empty list of numbers greater than 1.", nameof(orders));
        }

        Conversion = conversion;
        foreach (var entry in entries ?? [])
        {
            ArgumentNullException.ThrowIfNull(entry);
            Record(entry);
        }
    }

    /// <summary>The recorded entries, consecutive equal (q, z) merged.</summary>
    public IReadOnlyList<PrivacyLedgerEntry> Entries => _entries;

    /// <summary>The Rényi orders ε is minimised over.</summary>
    public IReadOnlyList<double> Orders { get; }

    /// <summary>The RDP → (ε, δ) conversion.</summary>
    public EpsilonConversion Conversion { get; }

    /// <summary>Total steps recorded.</summary>
    public long Steps => _entries.Sum(e => e.Steps);

    /// <summary>Records <paramref name="steps"/> steps with sampling rate <paramref name="sampleRate"/> and noise multiplier <paramref name="noiseMultiplier"/>.</summary>
    public void Record(double sampleRate, double noiseMultiplier, long steps = 1) => Record(new PrivacyLedgerEntry(sampleRate, noiseMultiplier, steps));

    /// <summary>Records <paramref name="steps"/> releases of the Skellam mechanism (variance μ, sensitivities Δ1 and Δ2 in integer units).</summary>
    public void RecordSkellam(double variance, double l1Sensitivity, double l2Sensitivity, long steps = 1) =>
        Record(PrivacyLedgerEntry.Skellam(variance, l1Sensitivity, l2Sensitivity, steps));

    /// <summary>Records <paramref name="entry"/>, merged into the last entry when the mechanism and its parameters are the same.</summary>
    public void Record(PrivacyLedgerEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        Check(entry);
        if (entry.Steps == 0)
        {
            return;
        }

        if (_entries.Count > 0 && _entries[^1] is var last && last.SameMechanism(entry))
        {
            _entries[^1] = last with { Steps = last.Steps + entry.Steps };
        }
        else
        {
            _entries.Add(entry);
        }
    }

    /// <summary>The composed RDP curve over <see cref="Orders"/>.</summary>
    public double[] Rdp() => Rdp(null);

    /// <summary>ε spent so far at <paramref name="delta"/>, with the minimising order.</summary>
    public PrivacySpent Spent(double delta) => RdpAccountant.Epsilon(Orders, Rdp(), delta, Conversion);

    /// <summary>ε at <paramref name="delta"/> after <paramref name="steps"/> more steps with (<paramref name="sampleRate"/>, <paramref name="noiseMultiplier"/>), without recording them.</summary>
    public PrivacySpent SpentAfter(double delta, double sampleRate, double noiseMultiplier, long steps = 1)
    {
        return SpentAfter(delta, new PrivacyLedgerEntry(sampleRate, noiseMultiplier, steps));
    }

    /// <summary>ε at <paramref name="delta"/> after <paramref name="entry"/>, without recording it.</summary>
    public PrivacySpent SpentAfter(double delta, PrivacyLedgerEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        Check(entry);
        return RdpAccountant.Epsilon(Orders, Rdp(entry), delta, Conversion);
    }

    /// <summary>
    /// True when <paramref name="steps"/> more steps with (<paramref name="sampleRate"/>, <paramref name="noiseMultiplier"/>)
    /// would take ε at <paramref name="delta"/> above <paramref name="epsilonBudget"/>: the round must not start.
    /// </summary>
    public bool WouldExceed(double epsilonBudget, double delta, double sampleRate, double noiseMultiplier, long steps = 1)
    {
        if (!(epsilonBudget >= 0))
        {
            throw new ArgumentOutOfRangeException(nameof(epsilonBudget), epsilonBudget, "The ε budget must be non-negative.");
        }

        return SpentAfter(delta, sampleRate, noiseMultiplier, steps).Epsilon > epsilonBudget;
    }

    /// <summary>The entries as JSON (<c>[{"q":…,"z":…,"steps":…}]</c>), doubles in round-trip form.</summary>
    public string ToJson() => JsonSerializer.Serialize(_entries, Json);

    /// <summary>A ledger from <see cref="ToJson"/>'s output; throws <see cref="FormatException"/> when it is not one.</summary>
    public static PrivacyLedger FromJson(string json, IReadOnlyList<double>? orders = null, EpsilonConversion conversion = EpsilonConversion.Balle2020)
    {
        ArgumentNullException.ThrowIfNull(json);
        List<PrivacyLedgerEntry>? entries;
        try
        {
            entries = JsonSerializer.Deserialize<List<PrivacyLedgerEntry>>(json, Json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"Not a privacy ledger: {e.Message}", e);
        }

        try
        {
            return new PrivacyLedger(entries ?? throw new FormatException("Not a privacy ledger: null."), orders, conversion);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"Not a valid privacy ledger: {e.Message}", e);
        }
    }

    private double[] Rdp(PrivacyLedgerEntry? extra)
    {
        var total = new double[Orders.Count];
        foreach (var entry in extra is null ? _entries : _entries.Append(extra))
        {
            var rdp = entry.Rdp(Orders);
            for (var i = 0; i < total.Length; i++)
            {
                total[i] += rdp[i];
            }
        }

        return total;
    }

    private static void Check(PrivacyLedgerEntry entry)
    {
        RdpAccountant.CheckParameters(entry.SampleRate, entry.NoiseMultiplier);
        ArgumentOutOfRangeException.ThrowIfNegative(entry.Steps);
        if (entry.SkellamVariance is { } mu)
        {
            SkellamAccountant.Check(mu, entry.L1Sensitivity ?? -1, entry.L2Sensitivity ?? -1);
        }
        else if (entry.L1Sensitivity is not null || entry.L2Sensitivity is not null)
        {
            throw new ArgumentException("A Gaussian ledger entry carries no sensitivities.", nameof(entry));
        }
    }
}
