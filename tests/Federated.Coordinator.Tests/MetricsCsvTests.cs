using Federated.Coordinator.Rounds;

namespace Federated.Coordinator.Tests;

public sealed class MetricsCsvTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-metrics-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Append_RowsWithDifferentColumns_KeepEveryEarlierRow()
    {
        var path = Path.Combine(_dir, "rounds.csv");

        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true", ["agg_loss"] = "0.5" });
        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "2", ["ok"] = "false" }); // a failed round: no aggregation metrics
        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "3", ["ok"] = "true", ["agg_loss"] = "0.4", ["epsilon"] = "1.5" });

        Assert.Equal(
            ["round,ok,agg_loss,epsilon", "1,true,0.5,", "2,false,,", "3,true,0.4,1.5"],
            File.ReadAllLines(path));
        Assert.False(File.Exists(path + ".tmp"));
    }
}
