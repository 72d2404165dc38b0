using Federated.Learning.Strategies;

namespace Federated.Learning.Tests.Strategies;

public sealed class StrategyFactoryTests
{
    private static readonly Dictionary<string, string> NoOptions = [];

    [Theory]
    [InlineData("fedavg", typeof(FedAvg))]
    [InlineData("FedProx", typeof(FedProx))]
    [InlineData("fedavgm", typeof(FedAvgM))]
    [InlineData("fedadagrad", typeof(FedAdagrad))]
    [InlineData("fedadam", typeof(FedAdam))]
    [InlineData("fedyogi", typeof(FedYogi))]
    [InlineData("scaffold", typeof(Scaffold))]
    [InlineData("fednova", typeof(FedNova))]
    public void Create_KnownName_BuildsThatStrategy(string name, Type type)
    {
        var strategy = StrategyFactory.Create(name, NoOptions);

        Assert.IsType(type, strategy);
        Assert.Equal(name.ToLowerInvariant(), strategy.Name);
    }

    [Fact]
    public void Create_Options_AreParsedInvariantCulture()
    {
        var prox = Assert.IsType<FedProx>(StrategyFactory.Create("fedprox", new Dictionary<string, string> { ["mu"] = "0.5", ["server_lr"] = "2" }));
        Assert.Equal(0.5, prox.Mu);
        Assert.Equal(2, prox.ServerLearningRate);
        Assert.Equal("0.5", prox.ConfigureFit(1)["proximal_mu"]);

        var momentum = Assert.IsType<FedAvgM>(StrategyFactory.Create("fedavgm", new Dictionary<string, string> { ["momentum"] = "0.5" }));
        Assert.Equal(0.5, momentum.Momentum);

        var yogi = Assert.IsType<FedYogi>(StrategyFactory.Create("fedyogi", new Dictionary<string, string>
        {
            ["eta"] = "0.01", ["beta1"] = "0.8", ["beta2"] = "0.999", ["tau"] = "1e-3", ["initial_variance"] = "0",
        }));
        Assert.Equal(new AdaptiveOptions { Eta = 0.01, Beta1 = 0.8, Beta2 = 0.999, Tau = 1e-3, InitialVariance = 0 }, yogi.Options);

        var nova = Assert.IsType<FedNova>(StrategyFactory.Create("fednova", new Dictionary<string, string> { ["client_momentum"] = "0.9" }));
        Assert.Equal(0.9, nova.ClientMomentum);
        Assert.Equal("0.9", nova.ConfigureFit(1)[FedNova.MomentumKey]);

        var scaffold = Assert.IsType<Scaffold>(StrategyFactory.Create("scaffold", new Dictionary<string, string> { ["server_lr"] = "0.5" }));
        Assert.Equal(0.5, scaffold.GlobalLearningRate);
    }

    [Fact]
    public void Create_Deterministic_WrapsTheStrategy()
    {
        var strategy = StrategyFactory.Create("fedadam", new Dictionary<string, string> { ["deterministic"] = "true", ["eta"] = "0.2" });

        var wrapper = Assert.IsType<DeterministicStrategy>(strategy);
        Assert.Equal(0.2, Assert.IsType<FedAdam>(wrapper.Inner).Options.Eta);
        Assert.Equal("fedadam", strategy.Name);
    }

    [Fact]
    public void Create_UnknownName_ListsKnownNames()
    {
        var error = Assert.Throws<ArgumentException>(() => StrategyFactory.Create("fedsgd", NoOptions));

        foreach (var name in StrategyFactory.Names)
        {
            Assert.Contains(name, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Create_UnknownOption_ListsTheStrategysOptions()
    {
        var error = Assert.Throws<ArgumentException>(() => StrategyFactory.Create("fedavgm", new Dictionary<string, string> { ["mu"] = "0.1" }));

        Assert.Contains("'mu'", error.Message, StringComparison.Ordinal);
        Assert.Contains("server_lr", error.Message, StringComparison.Ordinal);
        Assert.Contains("momentum", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fedavg", "server_lr", "fast")]
    [InlineData("fedavg", "server_lr", "0,5")]
    [InlineData("fedavg", "server_lr", "-1")]
    [InlineData("fedavgm", "momentum", "1")]
    [InlineData("fedadam", "beta2", "NaN")]
    [InlineData("fedprox", "mu", "-0.1")]
    [InlineData("fedavg", "deterministic", "yes")]
    public void Create_InvalidValue_ThrowsArgumentException(string name, string option, string value)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => StrategyFactory.Create(name, new Dictionary<string, string> { [option] = value }));

        Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_CustomStrategy_CreateBuildsItWithItsOptionsAndNamesListIt()
    {
        IReadOnlyDictionary<string, string>? seen = null;
        StrategyFactory.Register("My-Strategy", options =>
        {
            seen = options;
            return new FedAvg(0.5);
        });
        try
        {
            var strategy = StrategyFactory.Create(" my-strategy ", new Dictionary<string, string> { ["alpha"] = "2" });

            Assert.IsType<FedAvg>(strategy);
            Assert.Equal("2", seen!["alpha"]);
            Assert.Contains("my-strategy", StrategyFactory.Names);
        }
        finally
        {
            StrategyFactory.Unregister("my-strategy");
        }

        Assert.DoesNotContain("my-strategy", StrategyFactory.Names);
    }

    [Fact]
    public void Register_BuiltInName_Throws()
    {
        var error = Assert.Throws<ArgumentException>(() => StrategyFactory.Register("FedAvg", _ => new FedAvg()));

        Assert.Contains("built in", error.Message, StringComparison.Ordinal);
    }
}
