using Federated.Learning.Reporting;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>The run folder's TensorBoard export: a valid event file with one scalar per metric and round.</summary>
public sealed class TensorBoardExportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-tb-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Reads a TFRecord event file: [u64 length][u32 masked CRC][Event][u32 masked CRC] per record.</summary>
    private static List<Tensorboard.Event> ReadEvents(string path)
    {
        var events = new List<Tensorboard.Event>();
        using var reader = new BinaryReader(File.OpenRead(path));
        while (reader.BaseStream.Position < reader.BaseStream.Length)
        {
            var length = reader.ReadInt64();
            reader.ReadUInt32();
            events.Add(Tensorboard.Event.Parser.ParseFrom(reader.ReadBytes(checked((int)length))));
            reader.ReadUInt32();
        }

        return events;
    }

    [Fact]
    public void Write_TwoRounds_EveryMetricAScalarAtItsRound_NaNLeftOut()
    {
        RoundRecord[] rounds =
        [
            new(1, 0.5, 1.2, 1000, 2000, 3.0, 10, 0, 1.0, 100, Epsilon: 0.7) { LocalAccuracy = new MetricSpread(10, 0.6, 0.1, 0.4, 0.45, 0.6, 0.8) },
            new(2, 0.75, double.NaN, 1000, 2000, 3.0, 9, 1, 1.0, 100, Epsilon: 0.9),
        ];

        TensorBoardExport.Write(_dir, rounds);
        TensorBoardExport.Write(_dir, rounds); // a rewrite replaces the export rather than adding a second file

        var file = Assert.Single(Directory.GetFiles(Path.Combine(_dir, TensorBoardExport.Folder)));
        Assert.Contains("events.out.tfevents.", Path.GetFileName(file), StringComparison.Ordinal);
        var scalars = ReadEvents(file).Where(e => e.Summary is not null).SelectMany(e => e.Summary.Value.Select(v => (e.Step, v.Tag, v.SimpleValue))).ToList();
        Assert.Contains((1L, "accuracy", 0.5f), scalars);
        Assert.Contains((2L, "accuracy", 0.75f), scalars);
        Assert.Contains((2L, "privacy/epsilon", 0.9f), scalars);
        Assert.Contains((1L, "local_accuracy/p10", 0.45f), scalars);
        Assert.Contains((2L, "round/dropped", 1f), scalars);
        Assert.DoesNotContain(scalars, s => s.Step == 2 && s.Tag == "loss");
        Assert.DoesNotContain(scalars, s => s.Step == 2 && s.Tag.StartsWith("local_accuracy", StringComparison.Ordinal));
    }
}
