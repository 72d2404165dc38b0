using System.Globalization;

namespace Federated.Learning.Asynchronous;

/// <summary>How an update's weight falls with its staleness s (global versions applied since the agent's base version).</summary>
public enum StalenessKind
{
    /// <summary>w(s) = 1.</summary>
    Constant,

    /// <summary>w(s) = (1 + s)^−a (FedBuff's default, with a = ½).</summary>
    Polynomial,

    /// <summary>w(s) = 1 for s ≤ b, else 1 / (a (s − b) + 1) (FedAsync's hinge).</summary>
    Hinge,
}

/// <summary>
/// A staleness weighting function (Nguyen et al. 2022, Xie et al. 2019). Every function gives w(0) = 1 and
/// 0 &lt; w(s) ≤ 1, so a weighted update is never larger than the update: central DP's sensitivity stays the clip bound.
/// </summary>
/// <param name="Kind">The function.</param>
/// <param name="A">The exponent of <see cref="StalenessKind.Polynomial"/>, the slope of <see cref="StalenessKind.Hinge"/>.</param>
/// <param name="B">The knee of <see cref="StalenessKind.Hinge"/>: staleness up to b weighs 1.</param>
public sealed record StalenessWeighting(StalenessKind Kind, double A = 0.5, double B = 0)
{
    /// <summary>The names <see cref="Parse"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["constant", "polynomial", "hinge"];

    /// <summary>w(<paramref name="staleness"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative staleness.</exception>
    public double Weight(int staleness)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(staleness);
        return Kind switch
        {
            StalenessKind.Constant => 1,
            StalenessKind.Polynomial => Math.Pow(1 + staleness, -A),
            StalenessKind.Hinge => staleness <= B ? 1 : 1 / (A * (staleness - B) + 1),
            _ => throw new InvalidOperationException($"Unknown staleness function {Kind}."),
        };
    }

    /// <summary>The function named <paramref name="name"/> with its parameters.</summary>
    /// <exception cref="ArgumentException">An unknown name or a parameter out of range (the message says which).</exception>
    public static StalenessWeighting Parse(string name, double a, double b)
    {
        var kind = (name ?? "").Trim().ToLowerInvariant() switch
        {
            "constant" => StalenessKind.Constant,
            "polynomial" => StalenessKind.Polynomial,
            "hinge" => StalenessKind.Hinge,
            _ => throw new ArgumentException($"The staleness function must be one of {string.Join(", ", Names)}, not '{name}'.", nameof(name)),
        };
        var weighting = new StalenessWeighting(kind, a, b);
        foreach (var error in weighting.Validate())
        {
            throw new ArgumentException(error, nameof(a));
        }

        return weighting;
    }

    /// <summary>What is wrong with the parameters (nothing when valid).</summary>
    public IEnumerable<string> Validate()
    {
        if (Kind == StalenessKind.Polynomial && !(A is >= 0 and <= 10))
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The polynomial staleness exponent a must be between 0 and 10 (got {A}).");
        }

        if (Kind == StalenessKind.Hinge && !(A is > 0 and <= 1000))
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The hinge staleness slope a must be positive and at most 1000 (got {A}).");
        }

        if (Kind == StalenessKind.Hinge && !(B is >= 0 and <= 1_000_000))
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The hinge staleness knee b must be between 0 and 1000000 (got {B}).");
        }
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        StalenessKind.Constant => "constant",
        StalenessKind.Polynomial => string.Create(CultureInfo.InvariantCulture, $"polynomial (1+s)^-{A:G4}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"hinge a={A:G4} b={B:G4}"),
    };
}
