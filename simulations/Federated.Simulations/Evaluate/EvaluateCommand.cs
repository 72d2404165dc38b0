using System.CommandLine;
using System.Globalization;
using Federated.Simulations.Scenarios;

namespace Federated.Simulations.Evaluate;

/// <summary>The <c>evaluate</c> command: a run's global model of one round, class by class.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var run = new Argument<DirectoryInfo>("run") { Description = "A run folder written by `federated-sim <scenario.json> --out DIR`." };
        var round = new Option<int?>("--round") { Description = "The round whose checkpoint to evaluate (default the newest; the coordinator keeps the two newest)." };
        var json = new Option<FileInfo?>("--json") { Description = "Where to write the result as JSON (default <run>/evaluation-round-NNNNNN.json)." };
        var command = new Command(
            "evaluate",
            "Evaluate a run's global model on the run's own evaluation data: accuracy, loss, per-class accuracy, how the predictions spread over the classes, and the confusion matrix.")
        {
            run, round, json,
        };
        command.SetAction((result, cancellationToken) =>
        {
            try
            {
                var folder = result.GetValue(run)!.FullName;
                if (result.GetValue(round) is < 0)
                {
                    throw new ArgumentException("--round must be 0 or more.");
                }

                var evaluation = RunEvaluation.Evaluate(folder, result.GetValue(round), cancellationToken);
                var path = result.GetValue(json)?.FullName
                    ?? Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"evaluation-round-{evaluation.Round:D6}.json"));
                RunEvaluation.WriteJson(path, evaluation);
                Console.Write(RunEvaluation.Format(evaluation));
                Console.WriteLine($"wrote {path}");
                return Task.FromResult(0);
            }
            catch (Exception e) when (e is ArgumentException or ScenarioException or InvalidDataException or IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"evaluate: {e.Message}");
                return Task.FromResult(2);
            }
        });
        return command;
    }
}
