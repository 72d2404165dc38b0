using System.Text.Json;
using System.Text.Json.Serialization;

namespace Federated.Learning.Privacy;

/// <summary><paramref name="Steps"/> steps of the sampled Gaussian mechanism with sampling rate q and noise multiplier z.</summary>
/// <param name="SampleRate">q, the Poisson sampling rate, in [0, 1].</param>
/// <param name="NoiseMultiplier">z, the noise standard deviation over the L2 sensitivity (the clipping bound).</param>
/// <param name="Steps">How many steps (rounds) ran with these parameters.</param>
public sealed record PrivacyLedgerEntry(
    [property: JsonPropertyName("q")] double SampleRate,
    [property: JsonPropertyName("z")] double NoiseMultiplier,
    [property: JsonPropertyName("steps")] long Steps);

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
            Record(entry.SampleRate, entry.NoiseMultiplier, entry.Steps);
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
    public void Record(double sampleRate, double noiseMultiplier, long steps = 1)
    {
        Check(sampleRate, noiseMultiplier, steps);
        if (steps == 0)
        {
            return;
        }

        if (_entries.Count > 0 && _entries[^1] is var last && last.SampleRate == sampleRate && last.NoiseMultiplier == noiseMultiplier)
        {
            _entries[^1] = last with { Steps = last.Steps + steps };
        }
        else
        {
            _entries.Add(new PrivacyLedgerEntry(sampleRate, noiseMultiplier, steps));
        }
    }

    /// <summary>The composed RDP curve over <see cref="Orders"/>.</summary>
    public double[] Rdp() => Rdp(null);

    /// <summary>ε spent so far at <paramref name="delta"/>, with the minimising order.</summary>
    public PrivacySpent Spent(double delta) => RdpAccountant.Epsilon(Orders, Rdp(), delta, Conversion);

    /// <summary>ε at <paramref name="delta"/> after <paramref name="steps"/> more steps with (<paramref name="sampleRate"/>, <paramref name="noiseMultiplier"/>), without recording them.</summary>
    public PrivacySpent SpentAfter(double delta, double sampleRate, double noiseMultiplier, long steps = 1)
    {
        Check(sampleRate, noiseMultiplier, steps);
        return RdpAccountant.Epsilon(Orders, Rdp(new PrivacyLedgerEntry(sampleRate, noiseMultiplier, steps)), delta, Conversion);
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
            var rdp = RdpAccountant.Rdp(entry.SampleRate, entry.NoiseMultiplier, entry.Steps, Orders);
            for (var i = 0; i < total.Length; i++)
            {
                total[i] += rdp[i];
            }
        }

        return total;
    }

    private static void Check(double sampleRate, double noiseMultiplier, long steps)
    {
        RdpAccountant.CheckParameters(sampleRate, noiseMultiplier);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
    }
}
