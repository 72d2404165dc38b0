using System.Globalization;
using Federated.Learning.Personalization;
using Federated.Learning.Robustness;

namespace Federated.Learning.Strategies;

/// <summary>
/// Creates strategies by name with string options (from a command line or a configuration file).
/// Names: fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, scaffold, fednova, fedper, ditto (case-insensitive).
/// Options (invariant-culture numbers): <c>server_lr</c> (fedavg, fedprox, fedavgm, scaffold, fednova; 1),
/// <c>mu</c> (fedprox; 0.01), <c>momentum</c> (fedavgm; 0.9), <c>eta</c>, <c>beta1</c>, <c>beta2</c>, <c>tau</c>,
/// <c>initial_variance</c> (fedadagrad, fedadam, fedyogi; 0.1, 0.9, 0.99, 1e-9, τ²), <c>client_momentum</c>
/// (fednova; 0), <c>head</c> (fedper: parameter-name prefixes of the local head, e.g. <c>fc3</c>) or <c>head_layers</c>
/// (fedper: the last N layers; 1 when neither is given), <c>lambda</c> and <c>personal_epochs</c> (ditto; 0.1, and 0 for
/// the round's local epochs), and for every strategy <c>deterministic</c> (true/false; wraps it in a
/// <see cref="DeterministicStrategy"/>).
/// <para>
/// Robust aggregation (every strategy but scaffold): <c>aggregator</c> takes a <see cref="RobustAggregators.Parse"/>
/// specification (e.g. <c>trimmed_mean:beta=0.2</c>, <c>multikrum:f=2,m=5</c>) and wraps the strategy in a
/// <see cref="RobustStrategy"/>, whose update validation reads <c>max_norm_ratio</c> (10), <c>min_norm_ratio</c>
/// (off) and <c>max_norm</c> (off); <c>off</c> turns a check off. <c>aggregator=mean</c> validates without a robust
/// rule. A robust strategy is already independent of arrival order, so <c>deterministic</c> adds nothing to it.
/// </para>
/// </summary>
public static class StrategyFactory
{
    private static readonly string[] BuiltInNames = ["fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi", "scaffold", "fednova", "fedper", "ditto"];

    private static readonly Lock RegistryGate = new();

    // Strategies an application registered (bring your own strategy).
    private static readonly Dictionary<string, Func<IReadOnlyDictionary<string, string>, IStrategy>> Registered = new(StringComparer.Ordinal);

    /// <summary>The strategy names <see cref="Create"/> knows: the built-in ones, then those added with <see cref="Register"/>.</summary>
    public static IReadOnlyList<string> Names
    {
        get
        {
            lock (RegistryGate)
            {
                return [.. BuiltInNames, .. Registered.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>
    /// Makes an application's own <see cref="IStrategy"/> creatable by <paramref name="name"/>, the name configuration
    /// (<c>Coordinator:Strategy</c>) uses. <paramref name="create"/> receives the strategy options
    /// (<c>Coordinator:StrategyOptions</c>) unchecked: it validates its own and throws <see cref="ArgumentException"/>
    /// for a bad one, which the coordinator reports when its options are validated on start. Registering a name again
    /// replaces the earlier factory.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or names a built-in strategy.</exception>
    public static void Register(string name, Func<IReadOnlyDictionary<string, string>, IStrategy> create)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(create);
        var key = name.Trim().ToLowerInvariant();
        if (KnownOptions(key) is not null)
        {
            throw new ArgumentException($"Strategy '{name}' is built in; register your strategy under another name.", nameof(name));
        }

        lock (RegistryGate)
        {
            Registered[key] = create;
        }
    }

    private static readonly string[] AdaptiveOptionNames = ["eta", "beta1", "beta2", "tau", "initial_variance"];

    private static readonly string[] CommonOptionNames = ["deterministic", "aggregator", "max_norm_ratio", "min_norm_ratio", "max_norm"];

    private static readonly string[] ValidationOptionNames = ["max_norm_ratio", "min_norm_ratio", "max_norm"];

    /// <summary>Creates the strategy <paramref name="name"/>; throws <see cref="ArgumentException"/> for unknown names, options or values.</summary>
    public static IStrategy Create(string name, IReadOnlyDictionary<string, string>? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        options ??= new Dictionary<string, string>(StringComparer.Ordinal);
        var key = name.Trim().ToLowerInvariant();
        Func<IReadOnlyDictionary<string, string>, IStrategy>? registered;
        lock (RegistryGate)
        {
            Registered.TryGetValue(key, out registered);
        }

        if (registered is not null)
        {
            return registered(options);
        }

        var known = KnownOptions(key)
            ?? throw new ArgumentException($"Unknown strategy '{name}'; known strategies: {string.Join(", ", Names)}.", nameof(name));
        foreach (var option in options.Keys)
        {
            if (Array.IndexOf(CommonOptionNames, option) < 0 && Array.IndexOf(known, option) < 0)
            {
                throw new ArgumentException($"Strategy '{key}' has no option '{option}'; its options: {string.Join(", ", known.Concat(CommonOptionNames))}.", nameof(options));
            }
        }

        var reader = new OptionReader(key, options);
        var strategy = Build(key, reader);
        var deterministic = options.TryGetValue("deterministic", out var flag) && ParseBool(key, flag);
        if (options.TryGetValue("aggregator", out var specification))
        {
            return new RobustStrategy(strategy, RobustAggregators.Parse(specification), new UpdateValidator(reader.Validation()));
        }

        var stray = ValidationOptionNames.FirstOrDefault(options.ContainsKey);
        if (stray is not null)
        {
            throw new ArgumentException($"Strategy '{key}': option '{stray}' needs option 'aggregator' (e.g. aggregator=mean to validate without a robust rule).", nameof(options));
        }

        return deterministic ? new DeterministicStrategy(strategy) : strategy;
    }

    /// <summary>Forgets a registered strategy (tests register theirs and clean up).</summary>
    internal static bool Unregister(string name)
    {
        lock (RegistryGate)
        {
            return Registered.Remove(name.Trim().ToLowerInvariant());
        }
    }

    private static string[]? KnownOptions(string name) => name switch
    {
        "fedavg" or "scaffold" => ["server_lr"],
        "fedprox" => ["server_lr", "mu"],
        "fedavgm" => ["server_lr", "momentum"],
        "fedadagrad" or "fedadam" or "fedyogi" => AdaptiveOptionNames,
        "fednova" => ["server_lr", "client_momentum"],
        "fedper" => ["server_lr", "head", "head_layers"],
        "ditto" => ["server_lr", "lambda", "personal_epochs"],
        _ => null,
    };

    private static IStrategy Build(string name, OptionReader o)
    {
        try
        {
            return name switch
            {
                "fedavg" => new FedAvg(o.Get("server_lr", 1.0)),
                "fedprox" => new FedProx(o.Get("mu", 0.01), o.Get("server_lr", 1.0)),
                "fedavgm" => new FedAvgM(o.Get("server_lr", 1.0), o.Get("momentum", 0.9)),
                "fedadagrad" => new FedAdagrad(o.Adaptive()),
                "fedadam" => new FedAdam(o.Adaptive()),
                "fedyogi" => new FedYogi(o.Adaptive()),
                "scaffold" => new Scaffold(o.Get("server_lr", 1.0)),
                "fednova" => new FedNova(o.Get("client_momentum", 0), o.Get("server_lr", 1.0)),
                "fedper" => new FedPer(o.Head(), o.Get("server_lr", 1.0)),
                "ditto" => new Ditto(o.Get("lambda", 0.1), o.Count("personal_epochs", 0), o.Get("server_lr", 1.0)),
                _ => throw new ArgumentException($"Unknown strategy '{name}'; known strategies: {string.Join(", ", Names)}.", nameof(name)),
            };
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException($"Invalid option for strategy '{name}': {e.Message}", e);
        }
    }

    private static bool ParseBool(string strategy, string text) =>
        bool.TryParse(text, out var value) ? value : throw new ArgumentException($"Strategy '{strategy}': option 'deterministic' must be true or false, not '{text}'.");

    private sealed class OptionReader(string strategy, IReadOnlyDictionary<string, string> options)
    {
        public double? Optional(string option, double? fallback) =>
            options.TryGetValue(option, out var text) && string.Equals(text.Trim(), "off", StringComparison.OrdinalIgnoreCase)
                ? null
                : options.ContainsKey(option) ? Get(option, 0) : fallback;

        public double Get(string option, double fallback)
        {
            if (!options.TryGetValue(option, out var text))
            {
                return fallback;
            }

            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
                ? value
                : throw new ArgumentException($"Strategy '{strategy}': option '{option}' must be a number, not '{text}'.");
        }

        public int Count(string option, int fallback)
        {
            var value = Get(option, fallback);
            return value is >= 0 and <= int.MaxValue && value == Math.Floor(value)
                ? (int)value
                : throw new ArgumentException($"Strategy '{strategy}': option '{option}' must be a whole number ≥ 0, not '{options[option]}'.");
        }

        public HeadSelection Head()
        {
            var hasPrefixes = options.TryGetValue("head", out var prefixes);
            if (hasPrefixes && options.ContainsKey("head_layers"))
            {
                throw new ArgumentException($"Strategy '{strategy}': options 'head' and 'head_layers' exclude each other.");
            }

            if (hasPrefixes)
            {
                return HeadSelection.ByPrefixes(prefixes!);
            }

            var layers = Count("head_layers", 1);
            return layers >= 1 ? HeadSelection.LastLayers(layers) : throw new ArgumentException($"Strategy '{strategy}': option 'head_layers' must be at least 1.");
        }

        public UpdateValidationOptions Validation()
        {
            var defaults = new UpdateValidationOptions();
            var validation = new UpdateValidationOptions
            {
                MaxNormRatio = Optional("max_norm_ratio", defaults.MaxNormRatio),
                MinNormRatio = Optional("min_norm_ratio", defaults.MinNormRatio),
                MaxNorm = Optional("max_norm", defaults.MaxNorm),
            };
            try
            {
                validation.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new ArgumentException($"Invalid option for strategy '{strategy}': {e.Message}", e);
            }

            return validation;
        }

        public AdaptiveOptions Adaptive()
        {
            var defaults = new AdaptiveOptions();
            return new AdaptiveOptions
            {
                Eta = Get("eta", defaults.Eta),
                Beta1 = Get("beta1", defaults.Beta1),
                Beta2 = Get("beta2", defaults.Beta2),
                Tau = Get("tau", defaults.Tau),
                InitialVariance = options.ContainsKey("initial_variance") ? Get("initial_variance", 0) : null,
            };
        }
    }
}
