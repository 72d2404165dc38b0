using Federated.Simulations.Reference;

namespace Federated.Simulations.Tests;

/// <summary>docs/configuration.md is what the options classes generate: an option changed without regenerating fails here.</summary>
public sealed class ConfigurationReferenceTests
{
    private static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Federated.sln")))
            {
                return Path.Combine(dir.FullName, relative);
            }
        }

        throw new InvalidOperationException("Federated.sln not found above the test's output folder.");
    }

    [Fact]
    public void Generated_EveryKeyOnce_WithTypesDefaultsRangesAndDescriptions()
    {
        var text = ConfigurationReference.Generate();
        var rows = text.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)).ToList();

        Assert.Contains("| `Coordinator:Rounds` | integer | 3 | 1 – 1000000 | Rounds to run. |", rows);
        Assert.Contains(rows, r => r.StartsWith("| `Coordinator:ReconnectGraceSeconds` | number | 5 | 0 – 86400 |", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("| `Coordinator:SecureAggregation:Enabled` | bool | false |", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("| `Client:CoordinatorAddress` | URI | http://localhost:5000/ |", StringComparison.Ordinal));
        var keys = rows.Select(r => r.Split('|')[1].Trim()).ToList();
        Assert.Equal(keys.Count, keys.Distinct(StringComparer.Ordinal).Count());
        Assert.DoesNotContain(keys, k => k.Contains("Resolved", StringComparison.Ordinal));
        Assert.True(rows.Count(r => r.Split('|')[5].Trim().Length == 0) <= rows.Count / 20, "most keys carry a description from the XML docs");
    }

    [Fact]
    public void CommittedReference_MatchesTheOptionsClasses()
    {
        var committed = File.ReadAllText(RepositoryFile("docs/configuration.md")).Replace("\r\n", "\n", StringComparison.Ordinal);

        Assert.True(committed == ConfigurationReference.Generate(), $"docs/configuration.md is out of date with the options classes; regenerate it: {ConfigurationReference.Command}");
    }
}
