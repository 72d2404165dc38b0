using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Federated.Simulations.Evaluate;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Tests;

/// <summary>One two-round smoke run whose folder the evaluation tests read (run once for the class).</summary>
public sealed class SmokeRunFolder : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-evaluate-").FullName;

    public string Root => _dir;

    public string Run => Path.Combine(_dir, "run");

    public async Task InitializeAsync()
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", "smoke.json"));
        scenario.Rounds = 2;
        var code = await ScenarioRunner.RunAsync(scenario, Run, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(0, code);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary><c>federated-sim evaluate</c>: a finished run's checkpoints, evaluated again class by class.</summary>
public sealed class RunEvaluationTests(SmokeRunFolder folder) : IClassFixture<SmokeRunFolder>
{
    private readonly string _dir = folder.Root;

    private string Run => folder.Run;

    private double RecordedAccuracy(int round)
    {
        var lines = File.ReadAllLines(Path.Combine(Run, "metrics.csv"));
        var header = lines[0].Split(',');
        var row = lines.Skip(1).Select(l => l.Split(',')).Single(r => r[Array.IndexOf(header, "round")] == round.ToString(CultureInfo.InvariantCulture));
        return double.Parse(row[Array.IndexOf(header, "accuracy")], CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Evaluate_NewestCheckpoint_ReproducesTheRunsAccuracy_ClassByClass()
    {
        var evaluation = RunEvaluation.Evaluate(Run, round: null);

        Assert.Equal(2, evaluation.Round);
        Assert.Equal(RecordedAccuracy(2), evaluation.Result.Accuracy, 5e-6); // metrics.csv rounds to 5 places
        Assert.Equal(evaluation.Result.Accuracy, evaluation.RecordedAccuracy, 5e-6);
        var confusion = evaluation.Result.ConfusionMatrix;
        Assert.Equal(4, confusion.Length); // the smoke scenario's four synthetic classes
        Assert.Equal(evaluation.Result.Samples, confusion.Sum(row => row.Sum()));
        Assert.Equal(evaluation.Result.Accuracy, (double)Enumerable.Range(0, 4).Sum(c => confusion[c][c]) / evaluation.Result.Samples, 1e-12);
        Assert.Equal(1.0, evaluation.PredictedShare.Sum(), 1e-9);
        Assert.Equal(evaluation.PredictedShare.Count(s => s > 0), evaluation.ClassesPredicted);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"predictions fall on {evaluation.ClassesPredicted} of 4 classes"), RunEvaluation.Format(evaluation), StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_EarlierRound_LoadsThatRoundsModel()
    {
        var first = RunEvaluation.Evaluate(Run, round: 1);

        Assert.Equal(1, first.Round);
        Assert.EndsWith("round-000001.safetensors", first.Checkpoint, StringComparison.Ordinal);
        Assert.Equal(RecordedAccuracy(1), first.Result.Accuracy, 5e-6);
    }

    [Fact]
    public void Evaluate_RoundWithoutCheckpoint_NamesTheRoundsThatAreKept()
    {
        var e = Assert.Throws<ArgumentException>(() => RunEvaluation.Evaluate(Run, round: 9));

        Assert.Contains("round 9", e.Message, StringComparison.Ordinal);
        Assert.Contains("1, 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_FolderThatIsNoRun_IsRefusedWithASentence()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_dir, $"empty-{Guid.NewGuid():N}")).FullName;

        var e = Assert.Throws<ArgumentException>(() => RunEvaluation.Evaluate(empty, round: null));

        Assert.Contains("not a run folder", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_ScenarioNamingAnotherModel_IsRefused()
    {
        // A copy of the run folder, so the other tests keep the original.
        var copy = Path.Combine(_dir, "renamed-model");
        foreach (var source in Directory.EnumerateFiles(Run, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(Run, source));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target);
        }

        var file = Path.Combine(copy, "scenario.json");
        var scenario = JsonNode.Parse(File.ReadAllText(file), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })!.AsObject();
        scenario["model"] = "simple-cnn";
        File.WriteAllText(file, scenario.ToJsonString());

        var e = Assert.Throws<InvalidDataException>(() => RunEvaluation.Evaluate(copy, round: null));

        Assert.Contains("'mlp'", e.Message, StringComparison.Ordinal);
        Assert.Contains("simple-cnn", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WriteJson_HoldsPerClassAccuracy_ShareAndConfusion()
    {
        var evaluation = RunEvaluation.Evaluate(Run, round: null);
        var path = Path.Combine(_dir, "out", $"evaluation-{Guid.NewGuid():N}.json");

        RunEvaluation.WriteJson(path, evaluation);

        var root = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        Assert.Equal(2, root.GetProperty("round").GetInt32());
        Assert.Equal(evaluation.Result.Accuracy, root.GetProperty("accuracy").GetDouble(), 1e-12);
        Assert.Equal(4, root.GetProperty("per_class_accuracy").GetArrayLength());
        Assert.Equal(4, root.GetProperty("predicted_share").GetArrayLength());
        Assert.Equal(evaluation.Result.Samples, root.GetProperty("confusion_matrix").EnumerateArray().Sum(row => row.EnumerateArray().Sum(v => v.GetInt64())));
    }
}
