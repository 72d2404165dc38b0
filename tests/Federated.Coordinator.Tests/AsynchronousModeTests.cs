using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Tests;

public sealed class AsynchronousModeTests
{
    private static CoordinatorOptions FedBuff() => new()
    {
        Mode = "fedbuff",
        Training = { Optimizer = "sgd" },
        Evaluation = { Source = "none" },
        Security = { Plaintext = "loopback" },
    };

    private static IEnumerable<string> Errors(CoordinatorOptions options) => new CoordinatorOptionsValidator().Validate(null, options).Failures ?? [];

    [Fact]
    public void Validate_FedBuffDefaults_AreValid() => Assert.Empty(Errors(FedBuff()));

    [Theory]
    [InlineData("mode", "Coordinator:Mode must be sync or fedbuff, not 'async'")]
    [InlineData("buffer", "buffer size K must be between 1 and 100000 (got 0)")]
    [InlineData("concurrency", "Coordinator:Async:Concurrency must be between 1 and 100000 (got 0)")]
    [InlineData("staleness", "Coordinator:Async:Staleness:Function must be one of constant, polynomial, hinge, not 'linear'")]
    [InlineData("hinge", "hinge staleness slope a must be positive")]
    [InlineData("cap", "cap on one agent's updates per flush must be between 1 and the buffer size 10 (got 11)")]
    [InlineData("strategy", "Coordinator:Strategy must be fedavg without options, not 'fedprox'")]
    [InlineData("downlink", "Coordinator:Compression:Downlink must be none")]
    [InlineData("adaptive", "supports fixed clipping only")]
    [InlineData("target", "Coordinator:Mode fedbuff needs Coordinator:Privacy:NoiseMultiplier")]
    [InlineData("clock", "Coordinator:VirtualClock:Distribution must be uniform, loguniform or lognormal, not 'normal'")]
    [InlineData("spread", "Coordinator:VirtualClock:Spread must be between 1 and 1000000 (got 0.5)")]
    public void Validate_BadFedBuffSetting_IsRefusedByName(string what, string expected)
    {
        var options = FedBuff();
        switch (what)
        {
            case "mode": options.Mode = "async"; break;
            case "buffer": options.Async.BufferSize = 0; break;
            case "concurrency": options.Async.Concurrency = 0; break;
            case "staleness": options.Async.Staleness.Function = "linear"; break;
            case "hinge": options.Async.Staleness = new StalenessSettings { Function = "hinge", A = 0 }; break;
            case "cap": options.Async.MaxContributionsPerFlush = 11; break;
            case "strategy": options.Strategy = "fedprox"; break;
            case "downlink": options.Compression.Downlink = "q8"; break;
            case "adaptive":
                options.Privacy = new PrivacySettings { Enabled = true, NoiseMultiplier = 1, SampleRate = 1, Adaptive = { Enabled = true } };
                break;
            case "target":
                options.Privacy = new PrivacySettings { Enabled = true, TargetEpsilon = 8, SampleRate = 1 };
                break;
            case "clock": options.VirtualClock = new VirtualClockSettings { Enabled = true, Distribution = "normal" }; break;
            default: options.VirtualClock = new VirtualClockSettings { Enabled = true, Spread = 0.5 }; break;
        }

        Assert.Contains(Errors(options), e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_SyncModeIgnoresTheAsyncSection()
    {
        var options = FedBuff();
        options.Mode = "sync";
        options.Async.BufferSize = 0;
        options.Strategy = "fedprox";
        Assert.Empty(Errors(options));
    }

    [Fact]
    public void AddFederatedCoordinator_FedBuffWithSecureAggregation_IsRefusedOnStart()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Coordinator:Mode"] = "fedbuff",
            ["Coordinator:SecureAggregation:Enabled"] = "true",
            ["Coordinator:Security:Plaintext"] = "loopback",
            ["Coordinator:Evaluation:Source"] = "none",
        }).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddFederatedCoordinator(configuration);
        using var provider = services.BuildServiceProvider();

        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<CoordinatorOptions>>().Value);

        Assert.Contains(e.Failures, f => f.Contains("secure aggregation is synchronous-only", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("sync", typeof(RoundRunner))]
    [InlineData("fedbuff", typeof(AsyncRunner))]
    public void AddFederatedCoordinator_Mode_ChoosesTheRunner(string mode, Type expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Coordinator:Mode"] = mode }).Build();
        var services = new ServiceCollection();
        services.AddFederatedCoordinator(configuration);

        var runners = services.Where(d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService) && d.ImplementationType is { } t && (t == typeof(RoundRunner) || t == typeof(AsyncRunner))).ToList();

        Assert.Equal(expected, Assert.Single(runners).ImplementationType);
    }

    [Theory]
    [InlineData("uniform")]
    [InlineData("loguniform")]
    public void VirtualClock_BoundedDistributions_StayWithinTheSpreadAndRepeat(string distribution)
    {
        var settings = new VirtualClockSettings { Enabled = true, Distribution = distribution, Spread = 10, Seconds = 2, Seed = 7 };
        var times = Enumerable.Range(0, 500).Select(i => VirtualClock.ComputeSeconds(settings, $"agent-{i:D4}")).ToList();

        Assert.All(times, t => Assert.InRange(t, 2, 20));
        Assert.True(times.Max() / times.Min() > 8, "500 draws should span most of the 10× spread");
        Assert.Equal(times[3], VirtualClock.ComputeSeconds(settings, "agent-0003"));
        Assert.NotEqual(times[3], VirtualClock.ComputeSeconds(new VirtualClockSettings { Distribution = distribution, Spread = 10, Seconds = 2, Seed = 8 }, "agent-0003"));
    }

    [Fact]
    public void VirtualClock_Lognormal_HasTheSpreadBetweenItsFifthAndNinetyFifthPercentiles()
    {
        var settings = new VirtualClockSettings { Enabled = true, Distribution = "lognormal", Spread = 10, Seconds = 5 };
        var times = Enumerable.Range(0, 4000).Select(i => VirtualClock.ComputeSeconds(settings, $"a{i}")).Order().ToList();

        Assert.InRange(times[3800] / times[200], 8, 12.5);
        Assert.InRange(times[2000], 4.5, 5.5); // the median is m
    }

    [Fact]
    public void VirtualClock_SyncRound_AdvancesByTheSlowestAgent()
    {
        var settings = new VirtualClockSettings { Enabled = true, Distribution = "uniform", Spread = 10, Seconds = 1 };
        var clock = new VirtualClock(Options.Create(new CoordinatorOptions { VirtualClock = settings }));
        string[] agents = ["a", "b", "c"];
        var slowest = agents.Max(a => VirtualClock.ComputeSeconds(settings, a));

        Assert.Equal(slowest, clock.AdvanceRound(agents), 12);
        Assert.Equal(2 * slowest, clock.AdvanceRound(agents), 12);
        Assert.Equal(2 * slowest, clock.AdvanceTo(0.5), 12); // never backwards
    }
}
