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

    [Fact]
    public void Reconcile_RowMissingFromTheCsv_IsRestoredFromTheHistoryAndWrittenRowsAreKept()
    {
        var path = Path.Combine(_dir, "rounds.csv");
        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true", ["wall_s"] = "2.0" });
        IReadOnlyDictionary<string, string>[] history =
        [
            new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true" },
            new Dictionary<string, string> { ["round"] = "2", ["ok"] = "true", ["epsilon"] = "0.5" },
        ];

        var (restored, dropped) = MetricsCsv.Reconcile(path, history);

        Assert.Equal((1, 0), (restored, dropped));
        Assert.Equal(["round,ok,wall_s,epsilon", "1,true,2.0,", "2,true,,0.5"], File.ReadAllLines(path));
    }

    [Fact]
    public void Reconcile_RowOfARoundTheStoreNeverCompleted_IsDropped()
    {
        var path = Path.Combine(_dir, "rounds.csv");
        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true" });
        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "2", ["ok"] = "true" });

        var (restored, dropped) = MetricsCsv.Reconcile(path, [new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true" }]);

        Assert.Equal((0, 1), (restored, dropped));
        Assert.Equal(["round,ok", "1,true"], File.ReadAllLines(path));
    }

    [Fact]
    public void Reconcile_CsvAlreadyMatches_LeavesTheFileUntouched()
    {
        var path = Path.Combine(_dir, "rounds.csv");
        MetricsCsv.Append(path, new Dictionary<string, string> { ["round"] = "1", ["ok"] = "true" });
        var before = File.GetLastWriteTimeUtc(path);

        Assert.Equal((0, 0), MetricsCsv.Reconcile(path, [new Dictionary<string, string> { ["round"] = "1" }]));
        Assert.Equal(before, File.GetLastWriteTimeUtc(path));
    }
}
