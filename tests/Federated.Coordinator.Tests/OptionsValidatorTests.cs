using Federated.Coordinator.Hosting;

namespace Federated.Coordinator.Tests;

public sealed class OptionsValidatorTests
{
    private static IEnumerable<string> Errors(CoordinatorOptions options) =>
        new CoordinatorOptionsValidator().Validate(null, options).Failures ?? [];

    [Fact]
    public void Defaults_AreValid() => Assert.Empty(Errors(new CoordinatorOptions { Training = { Optimizer = "sgd" }, Evaluation = { Source = "none" } }));

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
