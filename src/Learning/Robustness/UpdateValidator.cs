using System.Numerics.Tensors;
using Federated.Learning.Strategies;

namespace Federated.Learning.Robustness;

/// <summary>Why an update was left out of a round.</summary>
public enum RejectionReason
{
    /// <summary>The update names no client.</summary>
    MissingClientId,

    /// <summary>The client already contributed an update to the round.</summary>
    DuplicateClient,

    /// <summary>The example count (the weight) is not positive.</summary>
    InvalidExamples,

    /// <summary>The delta (or an extra tensor) does not have the model's length, i.e. not the model's layout.</summary>
    LengthMismatch,

    /// <summary>The delta (or an extra tensor) holds NaN or infinity.</summary>
    NonFinite,

    /// <summary>The delta's norm exceeds the configured multiple of the cohort's median norm (or the absolute limit).</summary>
    NormTooLarge,

    /// <summary>The delta's norm is below the configured fraction of the cohort's median norm.</summary>
    NormTooSmall,
}

/// <summary>One rejected update: the client, the reason and a message for logs.</summary>
/// <param name="ClientId">The client (empty when the update named none).</param>
/// <param name="Reason">The reason.</param>
/// <param name="Message">What was wrong, with the numbers.</param>
public sealed record UpdateRejection(string ClientId, RejectionReason Reason, string Message)
{
    /// <summary>The reason as a metric-friendly code, e.g. <c>non_finite</c> (metrics use <c>rejected.non_finite</c>).</summary>
    public string Code => CodeOf(Reason);

    /// <summary>The snake_case code of <paramref name="reason"/>.</summary>
    public static string CodeOf(RejectionReason reason) => reason switch
    {
        RejectionReason.MissingClientId => "missing_client_id",
        RejectionReason.DuplicateClient => "duplicate_client",
        RejectionReason.InvalidExamples => "invalid_examples",
        RejectionReason.LengthMismatch => "length_mismatch",
        RejectionReason.NonFinite => "non_finite",
        RejectionReason.NormTooLarge => "norm_too_large",
        RejectionReason.NormTooSmall => "norm_too_small",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "Unknown rejection reason."),
    };

    /// <summary>The rejection as a <see cref="ClientFailure"/> whose reason is <c>code: message</c>.</summary>
    public ClientFailure ToFailure() => new(ClientId, $"{Code}: {Message}");
}

/// <summary>Thrown by <see cref="RobustStrategy"/>'s aggregator for an update that fails the per-update checks.</summary>
public sealed class UpdateRejectedException : ArgumentException
{
    /// <summary>Creates the exception for <paramref name="rejection"/>.</summary>
    public UpdateRejectedException(UpdateRejection rejection)
        : base((rejection ?? throw new ArgumentNullException(nameof(rejection))).ToFailure().Reason)
    {
        Rejection = rejection;
    }

    /// <summary>The rejection.</summary>
    public UpdateRejection Rejection { get; }
}

/// <summary>Limits of <see cref="UpdateValidator"/>'s norm checks; null turns a check off.</summary>
public sealed record UpdateValidationOptions
{
    /// <summary>Reject updates with ‖Δ‖ &gt; k × the cohort's median norm (default k = 10; must be ≥ 1).</summary>
    public double? MaxNormRatio { get; init; } = 10;

    /// <summary>Reject updates with ‖Δ‖ &lt; r × the cohort's median norm (default off; in [0, 1]).</summary>
    public double? MinNormRatio { get; init; }

    /// <summary>Reject updates with ‖Δ‖ above this absolute bound (default off; positive).</summary>
    public double? MaxNorm { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (MaxNormRatio is { } k && !(k >= 1 && double.IsFinite(k)))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxNormRatio), k, $"MaxNormRatio must be ≥ 1 (a multiple of the median norm), not {k}.");
        }

        if (MinNormRatio is { } r && !(r is >= 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(MinNormRatio), r, $"MinNormRatio must be in [0, 1] (a fraction of the median norm), not {r}.");
        }

        if (MaxNorm is { } m)
        {
            StrategyGuards.Positive(m, nameof(MaxNorm));
        }
    }
}

/// <summary>The updates that passed validation and those that did not, in input order.</summary>
/// <param name="Accepted">The updates to aggregate.</param>
/// <param name="Rejections">The rejected ones, with reasons.</param>
public sealed record ValidationResult(IReadOnlyList<ClientUpdate> Accepted, IReadOnlyList<UpdateRejection> Rejections)
{
    /// <summary>Adds <c>rejected</c> and one <c>rejected.&lt;code&gt;</c> count per reason to <paramref name="metrics"/>.</summary>
    public void AddMetrics(IDictionary<string, double> metrics) => AddCounts(Rejections, metrics);

    /// <summary>Adds <c>rejected</c> and one <c>rejected.&lt;code&gt;</c> count per reason in <paramref name="rejections"/>.</summary>
    public static void AddCounts(IEnumerable<UpdateRejection> rejections, IDictionary<string, double> metrics)
    {
        ArgumentNullException.ThrowIfNull(rejections);
        ArgumentNullException.ThrowIfNull(metrics);
        var total = 0;
        foreach (var group in rejections.GroupBy(r => r.Code, StringComparer.Ordinal))
        {
            metrics[$"rejected.{group.Key}"] = group.Count();
            total += group.Count();
        }

        metrics["rejected"] = total;
    }
}

/// <summary>
/// Checks a round's updates before robust aggregation. Per update (<see cref="Check"/>): a client id, a positive
/// example count, a delta (and every extra tensor) of the model's length, finite values. Across the cohort
/// (<see cref="Validate"/>): one update per client, and norms not far outside the cohort — ‖Δ‖ above
/// <see cref="UpdateValidationOptions.MaxNormRatio"/> × the median norm of the updates that passed the
/// per-update checks, or below <see cref="UpdateValidationOptions.MinNormRatio"/> × it, or above
/// <see cref="UpdateValidationOptions.MaxNorm"/>. Ratio checks are skipped when the median norm is zero. The
/// layout's fingerprint is checked by the payload codec before an update exists; here it shows as the length.
/// </summary>
public sealed class UpdateValidator
{
    /// <summary>Creates a validator with <paramref name="options"/> (defaults when null).</summary>
    public UpdateValidator(UpdateValidationOptions? options = null)
    {
        Options = options ?? new UpdateValidationOptions();
        Options.Validate();
    }

    /// <summary>The limits.</summary>
    public UpdateValidationOptions Options { get; }

    /// <summary>The per-update checks; null when <paramref name="update"/> passes them.</summary>
    public static UpdateRejection? Check(ClientUpdate update, int expectedLength)
    {
        ArgumentNullException.ThrowIfNull(update);
        var id = update.ClientId ?? "";
        if (id.Length == 0)
        {
            return new UpdateRejection(id, RejectionReason.MissingClientId, "The update names no client.");
        }

        if (update.NumExamples <= 0)
        {
            return new UpdateRejection(id, RejectionReason.InvalidExamples, $"Client '{id}' reports {update.NumExamples} examples; the weight must be positive.");
        }

        return CheckVector(id, "delta", update.Delta, expectedLength)
            ?? update.Tensors.Select(t => CheckVector(id, $"tensor '{t.Key}'", t.Value, expectedLength)).FirstOrDefault(r => r is not null);
    }

    /// <summary>Runs every check on <paramref name="updates"/>, whose deltas should have <paramref name="expectedLength"/> values.</summary>
    public ValidationResult Validate(IReadOnlyList<ClientUpdate> updates, int expectedLength)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var rejections = new List<UpdateRejection>();
        var passed = new List<ClientUpdate>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var update in updates)
        {
            var rejection = Check(update, expectedLength);
            if (rejection is null && !seen.Add(update.ClientId))
            {
                rejection = Duplicate(update.ClientId);
            }

            if (rejection is null)
            {
                passed.Add(update);
            }
            else
            {
                rejections.Add(rejection);
            }
        }

        if (passed.Count == 0)
        {
            return new ValidationResult(passed, rejections);
        }

        var norms = new double[passed.Count];
        Parallel.For(0, passed.Count, i => norms[i] = Math.Sqrt(RobustMath.SquaredNorm(passed[i].Delta)));
        var median = Selection.Median(norms);
        var accepted = new List<ClientUpdate>(passed.Count);
        for (var i = 0; i < passed.Count; i++)
        {
            var rejection = CheckNorm(passed[i].ClientId, norms[i], median);
            if (rejection is null)
            {
                accepted.Add(passed[i]);
            }
            else
            {
                rejections.Add(rejection);
            }
        }

        return new ValidationResult(accepted, rejections);
    }

    /// <summary>The rejection of a second update from <paramref name="clientId"/>.</summary>
    internal static UpdateRejection Duplicate(string clientId) =>
        new(clientId, RejectionReason.DuplicateClient, $"Client '{clientId}' sent more than one update this round; only the first counts.");

    private static UpdateRejection? CheckVector(string id, string what, float[]? vector, int length)
    {
        if (vector is null || vector.Length != length)
        {
            return new UpdateRejection(id, RejectionReason.LengthMismatch, $"Client '{id}' sent a {what} of {vector?.Length ?? 0} floats; the model has {length}.");
        }

        return TensorPrimitives.IsFiniteAll<float>(vector)
            ? null
            : new UpdateRejection(id, RejectionReason.NonFinite, $"Client '{id}' sent a {what} with non-finite values (NaN or infinity).");
    }

    private UpdateRejection? CheckNorm(string id, double norm, double median)
    {
        if (Options.MaxNorm is { } limit && norm > limit)
        {
            return new UpdateRejection(id, RejectionReason.NormTooLarge, $"Client '{id}' sent a delta of norm {norm:G4}, above the limit {limit:G4}.");
        }

        if (median > 0 && Options.MaxNormRatio is { } k && norm > k * median)
        {
            return new UpdateRejection(id, RejectionReason.NormTooLarge, $"Client '{id}' sent a delta of norm {norm:G4}, more than {k:G4} × the cohort's median norm {median:G4}.");
        }

        if (median > 0 && Options.MinNormRatio is { } r && norm < r * median)
        {
            return new UpdateRejection(id, RejectionReason.NormTooSmall, $"Client '{id}' sent a delta of norm {norm:G4}, less than {r:G4} × the cohort's median norm {median:G4}.");
        }

        return null;
    }
}
