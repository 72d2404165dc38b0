using System.Globalization;

namespace Federated.Learning.Asynchronous;

/// <summary>
/// Buffered asynchronous aggregation (FedBuff, Nguyen et al. 2022): the server buffers <see cref="BufferSize"/> updates
/// and applies their staleness-weighted mean, scaled by <see cref="ServerLearningRate"/>, as one new global version.
/// </summary>
public sealed class FedBuffOptions
{
    /// <summary>K: updates per flush (one new global version per K updates).</summary>
    public int BufferSize { get; init; } = 10;

    /// <summary>Updates based on a version more than this many versions old are rejected (and counted).</summary>
    public int MaxStaleness { get; init; } = 10;

    /// <summary>The staleness weighting w(s).</summary>
    public StalenessWeighting Staleness { get; init; } = new(StalenessKind.Polynomial, 0.5);

    /// <summary>η_g: global ← global + η_g · (1/K) Σ w(sᵢ) Δᵢ.</summary>
    public double ServerLearningRate { get; init; } = 1.0;

    /// <summary>Updates one agent may have in one buffer (the rest are refused until the flush); at least 1.</summary>
    public int MaxContributionsPerFlush { get; init; } = 1;

    /// <summary>Updates one agent may contribute over the whole run (0 = no cap).</summary>
    public long MaxContributionsPerAgent { get; init; }

    /// <summary>Central DP: the L2 bound each update is clipped to (0 = no DP).</summary>
    public double ClipBound { get; init; }

    /// <summary>Central DP: z, the Gaussian noise on the buffer's sum has standard deviation z · <see cref="ClipBound"/> · <see cref="MaxContributionsPerFlush"/>.</summary>
    public double NoiseMultiplier { get; init; }

    /// <summary>True when every flush is clipped, noised and accounted.</summary>
    public bool Private => ClipBound > 0;

    /// <summary>What is wrong with the options (nothing when valid), each message naming the setting.</summary>
    public IEnumerable<string> Validate()
    {
        string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        if (BufferSize is < 1 or > 100_000)
        {
            yield return F($"The buffer size K must be between 1 and 100000 (got {BufferSize}).");
        }

        if (MaxStaleness is < 0 or > 1_000_000)
        {
            yield return F($"The maximum staleness must be between 0 and 1000000 (got {MaxStaleness}).");
        }

        if (Staleness is null)
        {
            yield return "The staleness function is missing.";
        }
        else
        {
            foreach (var error in Staleness.Validate())
            {
                yield return error;
            }
        }

        if (!(ServerLearningRate is > 0 and <= 1000))
        {
            yield return F($"The server learning rate must be positive and at most 1000 (got {ServerLearningRate}).");
        }

        if (MaxContributionsPerFlush < 1 || MaxContributionsPerFlush > BufferSize)
        {
            yield return F($"The cap on one agent's updates per flush must be between 1 and the buffer size {BufferSize} (got {MaxContributionsPerFlush}).");
        }

        if (MaxContributionsPerAgent < 0)
        {
            yield return F($"The cap on one agent's updates over the run must be 0 (none) or positive (got {MaxContributionsPerAgent}).");
        }

        if (ClipBound < 0 || !double.IsFinite(ClipBound))
        {
            yield return F($"The clip bound must be 0 (no DP) or positive (got {ClipBound}).");
        }

        if (ClipBound > 0 && !(NoiseMultiplier is > 0 and < 1e6))
        {
            yield return F($"With a clip bound, the noise multiplier z must be positive (got {NoiseMultiplier}).");
        }
    }
}
