using System.Globalization;
using System.Text;
using System.Text.Json;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Federated.Coordinator.State;
using Federated.Learning.Training;
using Federated.Simulations.Scenarios;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Federated.Simulations.Evaluate;

/// <summary>
/// The evaluation of one round's global model of a finished (or stopped) run, on the data the run's coordinator
/// evaluated on: accuracy, loss, and what a single accuracy hides — per-class accuracy, how the model's predictions
/// spread over the classes, and the confusion matrix.
/// </summary>
/// <param name="Scenario">The run's scenario name.</param>
/// <param name="Round">The checkpoint's round.</param>
/// <param name="Checkpoint">The checkpoint file evaluated.</param>
/// <param name="RecordedAccuracy">The accuracy the coordinator recorded for that round in rounds.csv (NaN when it recorded none).</param>
/// <param name="Result">Loss, accuracy and the confusion matrix ([true class][predicted class] counts).</param>
public sealed record RunEvaluationResult(string Scenario, int Round, string Checkpoint, double RecordedAccuracy, EvaluationResult Result)
{
    /// <summary>The fraction of all predictions that went to each class.</summary>
    public double[] PredictedShare
    {
        get
        {
            var classes = Result.ConfusionMatrix.Length;
            var total = Math.Max(1, Result.Samples);
            return Enumerable.Range(0, classes).Select(c => (double)Result.ConfusionMatrix.Sum(row => row[c]) / total).ToArray();
        }
    }

    /// <summary>The class that takes the largest share of the predictions.</summary>
    public int MostPredictedClass => Array.IndexOf(PredictedShare, PredictedShare.Max());

    /// <summary>How many classes the model predicts for at least one sample.</summary>
    public int ClassesPredicted => PredictedShare.Count(share => share > 0);
}

/// <summary>Loads a run folder's scenario and checkpoint and evaluates the checkpoint as the run's coordinator did.</summary>
internal static class RunEvaluation
{
    private const string CheckpointPattern = "round-*.safetensors";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The rounds whose checkpoints a run folder still holds (the coordinator keeps the two newest).</summary>
    public static IReadOnlyList<int> CheckpointRounds(string runDirectory)
    {
        var directory = Path.Combine(runDirectory, "coordinator");
        return Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, CheckpointPattern)
                .Select(f => Path.GetFileNameWithoutExtension(f)["round-".Length..])
                .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : -1)
                .Where(r => r >= 0)
                .Order()
                .ToList()
            : [];
    }

    /// <summary>Evaluates round <paramref name="round"/> (default: the newest checkpoint) of the run in <paramref name="runDirectory"/>.</summary>
    /// <exception cref="ArgumentException">The folder is not a run folder, or holds no checkpoint of that round.</exception>
    /// <exception cref="ScenarioException">The run's scenario no longer validates (e.g. its data set has moved).</exception>
    /// <exception cref="InvalidDataException">The checkpoint is unreadable or does not fit the scenario's model.</exception>
    public static RunEvaluationResult Evaluate(string runDirectory, int? round, CancellationToken cancellationToken = default)
    {
        var scenarioFile = Path.Combine(runDirectory, "scenario.json");
        if (!File.Exists(scenarioFile))
        {
            throw new ArgumentException($"'{runDirectory}' is not a run folder: it holds no scenario.json.");
        }

        var rounds = CheckpointRounds(runDirectory);
        if (rounds.Count == 0)
        {
            throw new ArgumentException($"'{runDirectory}' holds no checkpoint (coordinator/{CheckpointPattern}): the run ended before its first round.");
        }

        var chosen = round ?? rounds[^1];
        if (!rounds.Contains(chosen))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"'{runDirectory}' holds no checkpoint of round {chosen}; it holds round(s) {string.Join(", ", rounds)} (the coordinator keeps the two newest)."));
        }

        var scenario = Scenario.Load(scenarioFile);
        var checkpointPath = Path.Combine(runDirectory, "coordinator", CheckpointFile.NameOf(chosen));
        var checkpoint = CheckpointFile.Read(checkpointPath);
        if (!string.Equals(checkpoint.Model, scenario.Model.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"Checkpoint '{checkpointPath}' holds a '{checkpoint.Model}' model but the run's scenario names '{scenario.Model}'.");
        }

        // The coordinator's own settings, so the model, the evaluation data and its normalisation are the run's.
        var settings = FederationPlan.Coordinator(scenario, Path.Combine(runDirectory, "coordinator"));
        var options = new ConfigurationBuilder().AddInMemoryCollection(settings!).Build()
            .GetSection(CoordinatorOptions.Section).Get<CoordinatorOptions>() ?? new CoordinatorOptions();
        using var server = new ServerModel(Options.Create(options));
        if (server.EvaluationSamples == 0)
        {
            throw new ArgumentException($"The scenario of '{runDirectory}' gives the coordinator no evaluation data.");
        }

        if (server.Weights.Layout.Fingerprint != checkpoint.LayoutFingerprint || server.Initial.Length != checkpoint.Global.Length)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"Checkpoint '{checkpointPath}' has {checkpoint.Global.Length} weights in layout {checkpoint.LayoutFingerprint}; the scenario's '{scenario.Model}' has {server.Initial.Length} in layout {server.Weights.Layout.Fingerprint}."));
        }

        var result = server.EvaluateAsync(checkpoint.Global, cancellationToken).GetAwaiter().GetResult()!;
        var recorded = RunReport.ReadRounds(Path.Combine(runDirectory, "coordinator", "rounds.csv"))
            .LastOrDefault(r => r.Round == chosen)?.Accuracy ?? double.NaN;
        return new RunEvaluationResult(scenario.Name, chosen, checkpointPath, recorded, result);
    }

    /// <summary>The human-readable table: one row per class, then the spread of the predictions.</summary>
    public static string Format(RunEvaluationResult evaluation)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        var r = evaluation.Result;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"{evaluation.Scenario}, round {evaluation.Round} ({Path.GetFileName(evaluation.Checkpoint)}): accuracy {r.Accuracy:P2}, loss {r.Loss:F4} on {r.Samples} samples");
        text.AppendLine(double.IsNaN(evaluation.RecordedAccuracy)
            ? string.Empty
            : string.Create(CultureInfo.InvariantCulture, $" (the run recorded {evaluation.RecordedAccuracy:P2})"));
        text.AppendLine("class  samples  predicted  accuracy");
        var share = evaluation.PredictedShare;
        var perClass = r.PerClassAccuracy;
        for (var c = 0; c < r.ConfusionMatrix.Length; c++)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{c,5}  {r.ConfusionMatrix[c].Sum(),7}  {share[c],9:P1}  {(double.IsNaN(perClass[c]) ? "-" : perClass[c].ToString("P2", CultureInfo.InvariantCulture)),8}"));
        }

        var top = evaluation.MostPredictedClass;
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"predictions fall on {evaluation.ClassesPredicted} of {share.Length} classes; class {top} takes {share[top]:P1} of them"));
        return text.ToString();
    }

    /// <summary>Writes the evaluation as JSON (snake_case keys; the confusion matrix's rows are true classes).</summary>
    public static void WriteJson(string path, RunEvaluationResult evaluation)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        var r = evaluation.Result;
        var document = new Dictionary<string, object?>
        {
            ["scenario"] = evaluation.Scenario,
            ["round"] = evaluation.Round,
            ["checkpoint"] = Path.GetFileName(evaluation.Checkpoint),
            ["accuracy"] = r.Accuracy,
            ["recorded_accuracy"] = double.IsNaN(evaluation.RecordedAccuracy) ? null : evaluation.RecordedAccuracy,
            ["loss"] = r.Loss,
            ["samples"] = r.Samples,
            ["classes_predicted"] = evaluation.ClassesPredicted,
            ["per_class_accuracy"] = r.PerClassAccuracy.Select(a => double.IsNaN(a) ? (double?)null : a).ToArray(),
            ["predicted_share"] = evaluation.PredictedShare,
            ["confusion_matrix"] = r.ConfusionMatrix,
        };
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(document, Json));
    }
}
