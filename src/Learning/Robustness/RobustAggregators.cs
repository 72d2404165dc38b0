using System.Globalization;

namespace Federated.Learning.Robustness;

/// <summary>
/// Builds robust rules from text, for configuration files, command lines and scenarios. A specification is one or
/// more stages joined by <c>&gt;</c>, each <c>name</c> or <c>name:key=value,key=value</c> (invariant-culture
/// numbers); a wrapper stage (<c>bucketing</c>, <c>norm_bound</c>) applies to everything after it:
/// <list type="bullet">
/// <item><c>mean</c>; <c>median</c>; <c>trimmed_mean:beta=0.1</c> (β ∈ [0, 0.5))</item>
/// <item><c>krum:f=F</c>; <c>multikrum:f=F[,m=M]</c> (m defaults to n − f); <c>bulyan:f=F</c> (f required)</item>
/// <item><c>geometric_median:nu=1e-6,iterations=100,tolerance=1e-6</c> (alias <c>rfa</c>)</item>
/// <item><c>centered_clipping:tau=10,iterations=5,start=zero|median</c> (alias <c>cclip</c>)</item>
/// <item><c>norm_bound:bound=median|B [&gt; inner]</c> (inner defaults to the weighted mean)</item>
/// <item><c>bucketing:s=2,seed=0 &gt; inner</c> (inner required)</item>
/// </list>
/// Example: <c>bucketing:s=2 &gt; centered_clipping:tau=1</c>. The values shown are the defaults.
/// <see cref="IRobustAggregator.Name"/> is the canonical form and parses back to an equal rule.
/// </summary>
public static class RobustAggregators
{
    /// <summary>The canonical rule names <see cref="Parse"/> knows (besides the aliases <c>rfa</c> and <c>cclip</c>).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["mean", "median", "trimmed_mean", "krum", "multikrum", "bulyan", "geometric_median", "centered_clipping", "norm_bound", "bucketing"];

    /// <summary>Parses <paramref name="specification"/>; throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public static IRobustAggregator Parse(string specification)
    {
        ArgumentNullException.ThrowIfNull(specification);
        var stages = specification.Split('>', StringSplitOptions.TrimEntries);
        if (stages.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException($"Robust aggregator '{specification}': empty stage; write stages as name:key=value,… joined by '>'.", nameof(specification));
        }

        IRobustAggregator? inner = null;
        for (var s = stages.Length - 1; s >= 0; s--)
        {
            var stage = Stage.Read(specification, stages[s]);
            if (inner is not null && stage.Name is not ("bucketing" or "norm_bound"))
            {
                throw new ArgumentException($"Robust aggregator '{specification}': '{stage.Name}' is not a wrapper and cannot be followed by '>'; only bucketing and norm_bound wrap another rule.", nameof(specification));
            }

            try
            {
                inner = stage.Build(inner);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new ArgumentException($"Robust aggregator '{specification}': {e.Message}", nameof(specification), e);
            }

            stage.RejectUnread();
        }

        return inner!;
    }

    private sealed class Stage(string specification, string name, Dictionary<string, string> options)
    {
        private readonly HashSet<string> _read = new(StringComparer.Ordinal);

        public string Name => name;

        public static Stage Read(string specification, string text)
        {
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            var name = (colon < 0 ? text : text[..colon]).Trim().ToLowerInvariant();
            name = name switch
            {
                "rfa" => "geometric_median",
                "cclip" => "centered_clipping",
                _ => name,
            };
            if (!Names.Contains(name))
            {
                throw new ArgumentException($"Robust aggregator '{specification}': unknown rule '{name}'; known rules: {string.Join(", ", Names)}.", nameof(specification));
            }

            var options = new Dictionary<string, string>(StringComparer.Ordinal);
            if (colon >= 0)
            {
                foreach (var pair in text[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    var parts = pair.Split('=', 2, StringSplitOptions.TrimEntries);
                    if (parts.Length != 2 || parts[0].Length == 0 || !options.TryAdd(parts[0].ToLowerInvariant(), parts[1]))
                    {
                        throw new ArgumentException($"Robust aggregator '{specification}': '{pair}' in '{name}' is not a key=value pair, or repeats a key.", nameof(specification));
                    }
                }
            }

            return new Stage(specification, name, options);
        }

        public IRobustAggregator Build(IRobustAggregator? inner) => name switch
        {
            "mean" => new WeightedMean(),
            "median" => new CoordinateMedian(),
            "trimmed_mean" => new TrimmedMean(Number("beta", 0.1)),
            "krum" => MultiKrum.Krum(Integer("f")),
            "multikrum" => new MultiKrum(Integer("f"), options.ContainsKey("m") ? Integer("m") : null),
            "bulyan" => new Bulyan(Integer("f")),
            "geometric_median" => new GeometricMedian(Number("nu", 1e-6), Integer("iterations", 100), Number("tolerance", 1e-6)),
            "centered_clipping" => new CenteredClipping(Number("tau", 10), Integer("iterations", 5), Start()),
            "norm_bound" => new NormBounding(Text("bound", "median") == "median" ? null : Number("bound", 0), inner),
            "bucketing" => new Bucketing(
                Integer("s", 2),
                inner ?? throw new ArgumentException($"Robust aggregator '{specification}': bucketing needs an inner rule after '>', e.g. 'bucketing:s=2 > centered_clipping:tau=10'."),
                (ulong)Integer("seed", 0)),
            _ => throw new ArgumentException($"Robust aggregator '{specification}': unknown rule '{name}'."),
        };

        public void RejectUnread()
        {
            var unknown = options.Keys.FirstOrDefault(k => !_read.Contains(k));
            if (unknown is not null)
            {
                throw new ArgumentException($"Robust aggregator '{specification}': '{name}' has no option '{unknown}'.");
            }
        }

        private string? Text(string key, string? fallback)
        {
            _read.Add(key);
            return options.TryGetValue(key, out var text) ? text : fallback;
        }

        private double Number(string key, double fallback)
        {
            var text = Text(key, null);
            if (text is null)
            {
                return fallback;
            }

            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
                ? value
                : throw new ArgumentException($"Robust aggregator '{specification}': '{name}' option '{key}' must be a number, not '{text}'.");
        }

        private int Integer(string key, int? fallback = null)
        {
            var text = Text(key, null);
            if (text is null)
            {
                return fallback ?? throw new ArgumentException($"Robust aggregator '{specification}': '{name}' needs option '{key}' (e.g. '{name}:{key}=2').");
            }

            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= 0
                ? value
                : throw new ArgumentException($"Robust aggregator '{specification}': '{name}' option '{key}' must be a non-negative integer, not '{text}'.");
        }

        private ClippingStart Start() => Text("start", "zero")!.ToLowerInvariant() switch
        {
            "zero" => ClippingStart.Zero,
            "median" => ClippingStart.Median,
            var other => throw new ArgumentException($"Robust aggregator '{specification}': centered_clipping option 'start' must be zero or median, not '{other}'."),
        };
    }
}
