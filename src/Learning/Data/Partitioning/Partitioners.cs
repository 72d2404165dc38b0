using System.Globalization;

namespace Federated.Learning.Data.Partitioning;

/// <summary>Creates partitioners from short spec strings, as used on command lines and in configuration.</summary>
public static class Partitioners
{
    /// <summary>The accepted spec forms, for help texts.</summary>
    public const string Syntax = "iid | dirichlet:<alpha> | dirichlet-balanced:<alpha> | shards:<k> (alias labels:<k>) | quantity:<beta>";

    /// <summary>
    /// Parses a spec: <c>iid</c>, <c>dirichlet:0.5</c>, <c>dirichlet-balanced:0.3</c>, <c>shards:2</c> (alias <c>labels:2</c>) or <c>quantity:0.5</c>.
    /// Names are case-insensitive; numbers use the invariant culture. Other parameters take their defaults.
    /// </summary>
    /// <exception cref="ArgumentException">The spec is unknown or its parameter is missing or invalid.</exception>
    public static IPartitioner Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var trimmed = spec.Trim();
        var colon = trimmed.IndexOf(':', StringComparison.Ordinal);
        var kind = (colon < 0 ? trimmed : trimmed[..colon]).Trim().ToUpperInvariant();
        var argument = colon < 0 ? null : trimmed[(colon + 1)..].Trim();

        switch (kind)
        {
            case "IID":
                if (argument is not null)
                {
                    throw new ArgumentException($"Partition spec '{spec}': 'iid' takes no parameter.", nameof(spec));
                }

                return new IidPartitioner();
            case "DIRICHLET":
                return new DirichletPartitioner(ParsePositiveDouble(spec, argument, "alpha"));
            case "DIRICHLET-BALANCED":
                return new BalancedDirichletPartitioner(ParsePositiveDouble(spec, argument, "alpha"));
            case "QUANTITY":
                return new QuantitySkewPartitioner(ParsePositiveDouble(spec, argument, "beta"));
            case "SHARDS" or "LABELS":
                if (argument is null
                    || !int.TryParse(argument, NumberStyles.None, CultureInfo.InvariantCulture, out var k)
                    || k < 1)
                {
                    throw new ArgumentException(
                        $"Partition spec '{spec}': expected a positive whole number of labels per client, e.g. 'shards:2'.", nameof(spec));
                }

                return new ShardPartitioner(k);
            default:
                throw new ArgumentException($"Unknown partition spec '{spec}': expected {Syntax}.", nameof(spec));
        }
    }

    private static double ParsePositiveDouble(string spec, string? argument, string parameter)
    {
        if (argument is null
            || !double.TryParse(argument, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || !(value > 0)
            || double.IsInfinity(value))
        {
            throw new ArgumentException(
                $"Partition spec '{spec}': {parameter} must be a positive number, e.g. '{spec.Split(':')[0].Trim()}:0.5'.", nameof(spec));
        }

        return value;
    }
}
