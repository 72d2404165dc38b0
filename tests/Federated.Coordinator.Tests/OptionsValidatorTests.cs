using Federated.Coordinator.Hosting;

namespace Federated.Coordinator.Tests;

public sealed class OptionsValidatorTests
{
    // Plaintext from loopback keeps the certificate rule out of the tests of other rules (SecurityTests below cover it).
    private static IEnumerable<string> Errors(CoordinatorOptions options)
    {
        options.Security.Plaintext = "loopback";
        return new CoordinatorOptionsValidator().Validate(null, options).Failures ?? [];
    }

    [Fact]
    public void Defaults_AreValid() => Assert.Empty(Errors(new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" } }));

    [Fact]
    public void Security_DefaultsWithoutCertificate_NameTheCertificateKey()
    {
        var errors = new CoordinatorOptionsValidator().Validate(null, new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" } }).Failures ?? [];

        var error = Assert.Single(errors);
        Assert.Contains("Coordinator:Security:Tls:CertificatePath is required", error, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Security:Plaintext", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Mode", "Coordinator:Security:Mode must be keys")]
    [InlineData("Plaintext", "Coordinator:Security:Plaintext must be refuse, loopback or allow")]
    [InlineData("Certificate", "Coordinator:Security:Tls:CertificatePath '/nonexistent/cert.pem' does not exist")]
    [InlineData("Rate", "Coordinator:Security:EnrolmentsPerMinute must be 0")]
    [InlineData("Streams", "Coordinator:Security:MaxConcurrentStreams must be between 1 and 100000")]
    public void Security_BadSetting_IsNamed(string what, string expected)
    {
        var options = new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, Security = { Plaintext = "loopback" } };
        switch (what)
        {
            case "Mode": options.Security.Mode = "trusting"; break;
            case "Plaintext": options.Security.Plaintext = "sometimes"; break;
            case "Certificate": options.Security.Tls.CertificatePath = "/nonexistent/cert.pem"; break;
            case "Rate": options.Security.EnrolmentsPerMinute = -1; break;
            default: options.Security.MaxConcurrentStreams = 0; break;
        }

        var errors = new CoordinatorOptionsValidator().Validate(null, options).Failures ?? [];

        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Population_Unknown_IsNamed()
    {
        var errors = Errors(new CoordinatorOptions { Population = "everyone", Evaluation = { Source = "none" } });
        Assert.Contains(errors, e => e.Contains("Coordinator:Population", StringComparison.Ordinal) && e.Contains("'everyone'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("q8:bits=4", "none", "Coordinator:Compression:Uplink", "has no parameter 'bits'")]
    [InlineData("none", "zip", "Coordinator:Compression:Downlink", "unknown codec 'zip'")]
    [InlineData("randk:ratio=0.01+q8", "none", "Coordinator:Compression:ErrorFeedback", "scaled=false")]
    public void Compression_BadSpec_IsNamed(string uplink, string downlink, string key, string reason)
    {
        var errors = Errors(new CoordinatorOptions { Compression = { Uplink = uplink, Downlink = downlink }, Evaluation = { Source = "none" } });

        Assert.Contains(errors, e => e.Contains(key, StringComparison.Ordinal) && e.Contains(reason, StringComparison.Ordinal));
    }

    [Fact]
    public void Compression_ValidSpecs_Pass()
    {
        var options = new CoordinatorOptions
        {
            Training = { Optimizer = "sgd" },
            Evaluation = { Source = "none" },
            Compression = { Uplink = "randk:ratio=0.01,scaled=false+q8", Downlink = "topk:ratio=0.01+q8" },
        };

        Assert.Empty(Errors(options));
        Assert.Equal("randk", options.Compression.ResolveUplink()!.Name);
        Assert.Null(new CompressionSettings().ResolveDownlink());
    }

    [Fact]
    public void RosterFile_Missing_IsNamed()
    {
        var errors = Errors(new CoordinatorOptions { RosterFile = "/nonexistent/roster.txt", Evaluation = { Source = "none" } });
        Assert.Contains(errors, e => e.Contains("Coordinator:RosterFile", StringComparison.Ordinal) && e.Contains("/nonexistent/roster.txt", StringComparison.Ordinal));
    }
}

public sealed class PrivacyOptionsValidatorTests
{
    private static CoordinatorOptions Private(Action<CoordinatorOptions>? change = null)
    {
        var options = new CoordinatorOptions
        {
            Training = { Optimizer = "sgd" },
            Evaluation = { Source = "none" },
            Rounds = 100,
            Privacy = { Enabled = true, NoiseMultiplier = 1.0, SampleRate = 0.1, ClipBound = 1.0, Delta = 1e-5 },
        };
        change?.Invoke(options);
        return options;
    }

    private static List<string> Errors(CoordinatorOptions options)
    {
        options.Security.Plaintext = "loopback";
        return [.. new CoordinatorOptionsValidator().Validate(null, options).Failures ?? []];
    }

    [Fact]
    public void Privacy_ValidSettings_AreAccepted()
    {
        Assert.Empty(Errors(Private()));
        Assert.Empty(Errors(Private(o => (o.Privacy.NoiseMultiplier, o.Privacy.TargetEpsilon, o.Privacy.EpsilonBudget) = (0, 4, 4))));
        Assert.Empty(Errors(Private(o => o.Privacy.Adaptive = new AdaptiveClippingSettings { Enabled = true, CountNoiseStddev = 5 })));
        Assert.Empty(Errors(Private(o => o.Strategy = "fedadam")));
    }

    [Fact]
    public void ConsolidateFisher_WithPrivacy_IsRefusedNamingTheKey()
    {
        Assert.Contains(Errors(Private(o => o.Continual.ConsolidateFisher = true)), e => e.StartsWith("Coordinator:Continual:ConsolidateFisher", StringComparison.Ordinal));
        Assert.Empty(Errors(Private(o => (o.Privacy.Enabled, o.Continual.ConsolidateFisher) = (false, true))));
    }

    [Fact]
    public void Privacy_Disabled_IgnoresItsKeys() =>
        Assert.Empty(Errors(Private(o => (o.Privacy.Enabled, o.Privacy.Delta, o.OverSelect, o.Strategy) = (false, 7, 3, "scaffold"))));

    [Fact]
    public void Privacy_WithScaffold_IsRefused()
    {
        var errors = Errors(Private(o => o.Strategy = "scaffold"));

        Assert.Contains(errors, e => e.Contains("Coordinator:Privacy", StringComparison.Ordinal) && e.Contains("scaffold", StringComparison.Ordinal));
    }

    [Fact]
    public void Privacy_WithOverSelection_IsRefused()
    {
        var errors = Errors(Private(o => o.OverSelect = 2));

        Assert.Contains(errors, e => e.Contains("Coordinator:OverSelect", StringComparison.Ordinal) && e.Contains("Poisson", StringComparison.Ordinal));
    }

    [Fact]
    public void Privacy_WithFixedFractionSampling_IsRefused()
    {
        var errors = Errors(Private(o => o.FractionFit = 0.1));

        Assert.Contains(errors, e => e.Contains("Coordinator:FractionFit", StringComparison.Ordinal) && e.Contains("Poisson", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("delta", "Coordinator:Privacy:Delta")]
    [InlineData("delta-one", "Coordinator:Privacy:Delta")]
    [InlineData("z-negative", "Coordinator:Privacy:NoiseMultiplier")]
    [InlineData("z-and-epsilon", "exactly one of NoiseMultiplier")]
    [InlineData("neither", "exactly one of NoiseMultiplier")]
    [InlineData("epsilon-nan", "Coordinator:Privacy:TargetEpsilon")]
    [InlineData("budget-negative", "Coordinator:Privacy:EpsilonBudget")]
    [InlineData("budget-below-one-round", "Coordinator:Privacy:EpsilonBudget")]
    [InlineData("rate", "Coordinator:Privacy:SampleRate")]
    [InlineData("clip", "Coordinator:Privacy:ClipBound")]
    [InlineData("count-noise", "Coordinator:Privacy:Adaptive:CountNoiseStddev")]
    [InlineData("count-noise-too-small", "2σ_b")]
    [InlineData("quantile", "Coordinator:Privacy:Adaptive:TargetQuantile")]
    public void Privacy_BadValue_IsNamed(string @case, string expected)
    {
        var options = Private(o =>
        {
            var p = o.Privacy;
            switch (@case)
            {
                case "delta": p.Delta = 0; break;
                case "delta-one": p.Delta = 1; break;
                case "z-negative": p.NoiseMultiplier = -1; break;
                case "z-and-epsilon": p.TargetEpsilon = 2; break;
                case "neither": p.NoiseMultiplier = 0; break;
                case "epsilon-nan": (p.NoiseMultiplier, p.TargetEpsilon) = (0, double.NaN); break;
                case "budget-negative": p.EpsilonBudget = -1; break;
                case "budget-below-one-round": p.EpsilonBudget = 1e-3; break;
                case "rate": p.SampleRate = 0; break;
                case "clip": p.ClipBound = 0; break;
                case "count-noise": p.Adaptive = new AdaptiveClippingSettings { Enabled = true }; break;
                case "count-noise-too-small": p.Adaptive = new AdaptiveClippingSettings { Enabled = true, CountNoiseStddev = 0.4 }; break;
                case "quantile": p.Adaptive = new AdaptiveClippingSettings { Enabled = true, CountNoiseStddev = 5, TargetQuantile = 1 }; break;
                default: throw new ArgumentOutOfRangeException(nameof(@case));
            }
        });

        var errors = Errors(options);

        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("dashboard", "", "", "loopback", "Coordinator:Dashboard:Path must start with '/'")]
    [InlineData("/dashboard/", "", "", "loopback", "Coordinator:Dashboard:Path must start with '/'")]
    [InlineData("/", "", "", "loopback", "Coordinator:Dashboard:Path must start with '/'")]
    [InlineData("/metrics", "", "", "loopback", "overlaps Coordinator:Prometheus:Path")]
    [InlineData("/dashboard", "https://127.0.0.1:8080", "", "loopback", "Coordinator:Dashboard:Url must be an http address")]
    [InlineData("/dashboard", "http://127.0.0.1:8080/ui", "", "loopback", "Coordinator:Dashboard:Url must be an http address")]
    [InlineData("/dashboard", "http://0.0.0.0:8080", "", "loopback", "serves the dashboard in cleartext beyond this machine without a token")]
    [InlineData("/dashboard", "http://10.1.2.3:8080", "", "refuse", "serves the dashboard in cleartext beyond this machine without a token")]
    [InlineData("/dashboard", "", "short", "loopback", "Coordinator:Dashboard:AccessToken must be at least 16 characters")]
    public void Dashboard_BadSetting_IsNamed(string path, string url, string token, string plaintext, string expected)
    {
        var options = new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, Dashboard = { Enabled = true, Path = path, Url = url, AccessToken = token } };
        options.Security.Plaintext = plaintext;
        options.Security.Tls.CertificatePath = "";

        var errors = new CoordinatorOptionsValidator().Validate(null, options).Failures ?? [];

        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", "", "loopback")]
    [InlineData("http://localhost:8080", "", "loopback")]
    [InlineData("http://[::1]:8080", "", "loopback")]
    [InlineData("http://0.0.0.0:8080", "0123456789abcdef0123", "loopback")]
    [InlineData("http://0.0.0.0:8080", "", "allow")]
    [InlineData("", "", "loopback")]
    public void Dashboard_LoopbackTokenOrTrustedNetwork_IsValid(string url, string token, string plaintext)
    {
        var options = new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, Dashboard = { Enabled = true, Url = url, AccessToken = token } };
        options.Security.Plaintext = plaintext;

        Assert.Empty(new CoordinatorOptionsValidator().Validate(null, options).Failures ?? []);
    }

    [Fact]
    public void Dashboard_Disabled_IgnoresItsOtherSettings() =>
        Assert.Empty(Errors(new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, Dashboard = { Path = "bad", Url = "http://0.0.0.0:1" } }));

    [Theory]
    [InlineData("Codec", "Coordinator:Compression:Uplink 'q8' cannot be combined with Coordinator:SecureAggregation:Enabled")]
    [InlineData("Robust", "Coordinator:StrategyOptions:aggregator 'krum' cannot be combined with Coordinator:SecureAggregation:Enabled")]
    [InlineData("Validation", "Coordinator:StrategyOptions:max_norm cannot be combined")]
    [InlineData("Scaffold", "Coordinator:Strategy 'scaffold' cannot be combined")]
    [InlineData("Privacy", "Coordinator:Privacy:Enabled cannot be combined")]
    [InlineData("Ring", "Coordinator:SecureAggregation:RingBits must be between 2 and 32")]
    [InlineData("Threshold", "Coordinator:SecureAggregation:Threshold (9) cannot exceed Coordinator:SecureAggregation:Degree (8)")]
    [InlineData("Deadline", "Coordinator:SecureAggregation:MaskedInputSeconds must be positive")]
    [InlineData("PrivacyPointsToNoise", "set Coordinator:SecureAggregation:Noise:Multiplier and Coordinator:SecureAggregation:Noise:L2Clip")]
    [InlineData("NoiseClip", "Coordinator:SecureAggregation:Noise:L2Clip must be positive")]
    [InlineData("NoiseDelta", "Coordinator:SecureAggregation:Noise:Delta must lie in (0, 1)")]
    [InlineData("NoiseNegative", "Coordinator:SecureAggregation:Noise:Multiplier must be 0 (no noise) or positive")]
    [InlineData("NoiseBoth", "Set one of Coordinator:SecureAggregation:Noise:Multiplier and Coordinator:SecureAggregation:Noise:TargetEpsilon")]
    [InlineData("BucketOne", "Coordinator:SecureAggregation:BucketSize must be 0 (one bucket) or at least 2")]
    [InlineData("BucketRule", "Coordinator:SecureAggregation:BucketAggregator 'averaging' is not a robust rule")]
    [InlineData("BucketThreshold", "Coordinator:SecureAggregation:Threshold (4) must be below Coordinator:SecureAggregation:BucketSize (4)")]
    [InlineData("RobustPointsToBuckets", "set Coordinator:SecureAggregation:BucketSize and Coordinator:SecureAggregation:BucketAggregator")]
    public void SecureAggregation_UnworkableSetting_IsRefusedWithTheReason(string what, string expected)
    {
        var options = new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, SecureAggregation = { Enabled = true } };
        switch (what)
        {
            case "Codec": options.Compression.Uplink = "q8"; break;
            case "Robust": options.StrategyOptions["aggregator"] = "krum"; break;
            case "Validation": options.StrategyOptions["max_norm"] = "3"; break;
            case "Scaffold": options.Strategy = "scaffold"; break;
            case "Privacy": options.Privacy.Enabled = true; break;
            case "Ring": options.SecureAggregation.RingBits = 33; break;
            case "Threshold": (options.SecureAggregation.Degree, options.SecureAggregation.Threshold) = (8, 9); break;
            case "Deadline": options.SecureAggregation.MaskedInputSeconds = 0; break;
            case "PrivacyPointsToNoise": options.Privacy.Enabled = true; break;
            case "NoiseClip": options.SecureAggregation.Noise.Multiplier = 1; break;
            case "NoiseDelta": (options.SecureAggregation.Noise.Multiplier, options.SecureAggregation.Noise.L2Clip, options.SecureAggregation.Noise.Delta) = (1, 1, 1); break;
            case "NoiseNegative": options.SecureAggregation.Noise.Multiplier = -1; break;
            case "NoiseBoth": (options.SecureAggregation.Noise.Multiplier, options.SecureAggregation.Noise.TargetEpsilon, options.SecureAggregation.Noise.L2Clip) = (1, 8, 1); break;
            case "BucketOne": options.SecureAggregation.BucketSize = 1; break;
            case "BucketRule": (options.SecureAggregation.BucketSize, options.SecureAggregation.BucketAggregator) = (4, "averaging"); break;
            case "BucketThreshold": (options.SecureAggregation.BucketSize, options.SecureAggregation.Threshold) = (4, 4); break;
            case "RobustPointsToBuckets": options.StrategyOptions["aggregator"] = "median"; break;
            default: throw new ArgumentOutOfRangeException(nameof(what));
        }

        Assert.Contains(Errors(options), e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void SecureAggregation_NoiseAndBuckets_AreValid()
    {
        var options = new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, SecureAggregation = { Enabled = true, BucketSize = 5, BucketAggregator = "trimmed_mean:beta=0.2" } };
        (options.SecureAggregation.Noise.Multiplier, options.SecureAggregation.Noise.L2Clip) = (1.0, 0.5);

        Assert.Empty(Errors(options));
    }

    [Fact]
    public void SecureAggregation_DefaultsWithFedAvg_AreValid() =>
        Assert.Empty(Errors(new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" }, SecureAggregation = { Enabled = true } }));
}
