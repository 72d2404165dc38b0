using Federated.Client.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Federated.Client.Tests;

public sealed class OptionsTests
{
    private static ClientOptions Valid() => new() { Data = new ClientDataOptions { Source = "synthetic", Clients = 4, Index = 3 } };

    [Fact]
    public void Defaults_AreValid()
    {
        Assert.Empty(new ClientOptions().GetErrors());
        Assert.Empty(Valid().GetErrors());
    }

    [Theory]
    [InlineData("tpu")]
    [InlineData("")]
    [InlineData("gpu0")]
    public void BadDevice_IsOneClearError(string device)
    {
        var options = Valid();
        options.Device = device;
        var error = Assert.Single(options.GetErrors());
        Assert.Contains("Client:Device must be auto, cpu or cuda", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(4, 7)]
    [InlineData(1, -1)]
    public void IndexOutsideClients_IsRejected(int clients, int index)
    {
        var options = Valid();
        options.Data.Clients = clients;
        options.Data.Index = index;
        var error = Assert.Single(options.GetErrors());
        Assert.Contains("Client:Data:Index", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("ftp://example.org")]
    [InlineData("localhost:5000")]
    public void BadAddress_IsRejected(string address)
    {
        var options = Valid();
        options.CoordinatorAddress = new Uri(address, UriKind.RelativeOrAbsolute);
        var error = Assert.Single(options.GetErrors());
        Assert.Contains("Client:CoordinatorAddress", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Labels_AreBounded()
    {
        var options = Valid();
        options.Labels["site"] = "lab-2";
        Assert.Empty(options.GetErrors());
        options.Labels[""] = "x";
        Assert.Contains(options.GetErrors(), e => e.Contains("Client:Labels", StringComparison.Ordinal));
        options.Labels.Remove("");
        for (var i = 0; i < 32; i++)
        {
            options.Labels[$"k{i}"] = "v";
        }

        Assert.Contains(options.GetErrors(), e => e.Contains("at most 32", StringComparison.Ordinal));
    }

    [Fact]
    public void OtherRules_AreChecked()
    {
        var options = Valid();
        options.Threads = -1;
        options.ReconnectMinSeconds = 5;
        options.ReconnectMaxSeconds = 1;
        options.Data.Partition = "zipf:2";
        options.Data.Normalization = "cifar";
        options.Data.Source = "parquet";
        var errors = options.GetErrors();
        Assert.Contains(errors, e => e.StartsWith("Client:Threads", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:ReconnectMaxSeconds", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:Data:Partition", StringComparison.Ordinal) && !e.Contains("(Parameter", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:Data:Normalization", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Client:Data:Source", StringComparison.Ordinal));
    }

    [Fact]
    public void Binding_ValidatesOnFirstUse_WithOneSentencePerRule()
    {
        using var provider = Build(new Dictionary<string, string?>
        {
            ["Client:Device"] = "tpu",
            ["Client:Data:Clients"] = "3",
            ["Client:Data:Index"] = "3",
        });
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<ClientOptions>>().Value);
        Assert.Equal(2, e.Failures.Count());
        Assert.All(e.Failures, f => Assert.StartsWith("Client:", f, StringComparison.Ordinal));
    }

    [Fact]
    public void Binding_ReadsNestedDataSection()
    {
        using var provider = Build(new Dictionary<string, string?>
        {
            ["Client:CoordinatorAddress"] = "http://coordinator:7000",
            ["Client:Threads"] = "1",
            ["Client:Data:Source"] = "synthetic",
            ["Client:Data:Clients"] = "10",
            ["Client:Data:Index"] = "9",
            ["Client:Data:MaxExamples"] = "600",
        });
        var options = provider.GetRequiredService<IOptions<ClientOptions>>().Value;
        Assert.Equal(new Uri("http://coordinator:7000"), options.CoordinatorAddress);
        Assert.Equal(1, options.Threads);
        Assert.Equal(9, options.Data.Index);
        Assert.Equal(600, options.Data.MaxExamples);
    }

    [Fact]
    public void PrefixedEnvironment_MapsIntoClientSection_AndCommandLineWins()
    {
        var environment = new Dictionary<string, string>
        {
            ["FEDERATED_CLIENT__Data__Index"] = "2",
            ["FEDERATED_CLIENT__Threads"] = "1",
            ["UNRELATED"] = "x",
        };
        var builder = new ConfigurationBuilder();
        ClientConfiguration.AddClientSources(builder, ["--Client:Threads=3"], environment);
        var configuration = builder.Build();
        Assert.Equal("2", configuration["Client:Data:Index"]);
        Assert.Equal("3", configuration["Client:Threads"]);
    }

    [Fact]
    public void Help_ListsEveryOptionWithDefaults()
    {
        using var writer = new StringWriter();
        OptionsHelp.Write(writer);
        var text = writer.ToString();
        foreach (var option in OptionsHelp.Describe())
        {
            Assert.Contains("--" + option.Key, text, StringComparison.Ordinal);
        }

        foreach (var key in new[] { "CoordinatorAddress", "AgentId", "EnrollmentKey", "Device", "Threads", "StateDirectory", "Data:Source", "Data:Directory",
                     "Data:Split", "Data:Partition", "Data:Clients", "Data:Index", "Data:Seed", "Data:MaxExamples", "Data:Normalization",
                     "Data:SyntheticCount", "Data:SyntheticClasses", "ReconnectMinSeconds", "ReconnectMaxSeconds", "MaxTransferRetries" })
        {
            Assert.Contains("--Client:" + key + " ", text, StringComparison.Ordinal);
        }

        Assert.Contains("Default: http://localhost:5000", text, StringComparison.Ordinal);
        Assert.Contains("Default: 30", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--help" }, true)]
    [InlineData(new[] { "--Client:Threads=1", "-h" }, true)]
    [InlineData(new[] { "--Client:Threads=1" }, false)]
    public void HelpFlag_IsRecognised(string[] args, bool expected) => Assert.Equal(expected, OptionsHelp.IsRequested(args));

    private static ServiceProvider Build(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddFederatedClient(configuration);
        return services.BuildServiceProvider();
    }
}
