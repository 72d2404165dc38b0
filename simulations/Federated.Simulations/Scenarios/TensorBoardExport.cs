using System.Globalization;
using static TorchSharp.torch.utils;

namespace Federated.Simulations.Scenarios;

/// <summary>
/// Writes a run's per-round metrics as TensorBoard scalars (TorchSharp's <c>SummaryWriter</c>) into the run folder's
/// <c>tensorboard/</c>, one tag per metric and the round as the step: <c>tensorboard --logdir runs</c> then compares runs
/// side by side. The same figures are in metrics.csv and metrics.json.
/// </summary>
public static class TensorBoardExport
{
    /// <summary>The folder under a run directory that holds the event file.</summary>
    public const string Folder = "tensorboard";

    /// <summary>Writes <paramref name="rounds"/> into <c><paramref name="runDirectory"/>/tensorboard</c> (replacing an earlier export).</summary>
    public static void Write(string runDirectory, IReadOnlyList<RoundRecord> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var directory = Path.Combine(runDirectory, Folder);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }

        var writer = tensorboard.SummaryWriter(directory);
        var wallTime = DateTimeOffset.UtcNow.ToUnixTimeSeconds(); // TensorBoard reads wall time as seconds since 1970
        foreach (var r in rounds)
        {
            foreach (var (tag, value) in Scalars(r))
            {
                if (double.IsFinite(value))
                {
                    writer.add_scalar(tag, (float)value, r.Round, wallTime);
                }
            }
        }
    }

    /// <summary>The scalars of one round: tag and value.</summary>
    public static IEnumerable<(string Tag, double Value)> Scalars(RoundRecord round)
    {
        ArgumentNullException.ThrowIfNull(round);
        yield return ("accuracy", round.Accuracy);
        yield return ("loss", round.Loss);
        yield return ("bytes/up", round.BytesUp);
        yield return ("bytes/down", round.BytesDown);
        yield return ("round/duration_s", round.DurationS);
        yield return ("round/slowest_train_s", round.SlowestTrainS);
        yield return ("round/participants", round.Participants);
        yield return ("round/dropped", round.Dropped);
        yield return ("round/rejected", round.Rejected);
        yield return ("memory/peak_rss_mb", round.PeakRssMb);
        if (round.Epsilon is { } epsilon)
        {
            yield return ("privacy/epsilon", epsilon);
        }

        if (round.VirtualS is { } virtualSeconds)
        {
            yield return ("round/virtual_s", virtualSeconds);
        }

        for (var j = 0; j < (round.ExperienceAccuracy?.Count ?? 0); j++)
        {
            yield return (string.Create(CultureInfo.InvariantCulture, $"accuracy/experience_{j}"), round.ExperienceAccuracy![j]);
        }

        if (round.LocalAccuracy is { } local)
        {
            yield return ("local_accuracy/mean", local.Mean);
            yield return ("local_accuracy/std", local.Std);
            yield return ("local_accuracy/min", local.Min);
            yield return ("local_accuracy/p10", local.P10);
            yield return ("local_accuracy/median", local.Median);
            yield return ("local_accuracy/max", local.Max);
        }
    }
}
