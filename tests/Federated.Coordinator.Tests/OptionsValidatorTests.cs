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

    [Fact]
    public void RosterFile_Missing_IsNamed()
    {
        var errors = Errors(new CoordinatorOptions { RosterFile = "/nonexistent/roster.txt", Evaluation = { Source = "none" } });
        Assert.Contains(errors, e => e.Contains("Coordinator:RosterFile", StringComparison.Ordinal) && e.Contains("/nonexistent/roster.txt", StringComparison.Ordinal));
    }
}
