using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// One EWC penalty: a Fisher diagonal and the anchor weights it pulls towards, both by parameter name. It owns its
/// tensors. A coordinator that consolidates agents' terms averages the Fisher diagonals weighted by
/// <see cref="Samples"/>.
/// </summary>
public sealed class EwcTerm : IDisposable
{
    /// <summary>Takes ownership of <paramref name="fisher"/> and <paramref name="anchor"/>, which must name the same parameters with the same shapes.</summary>
    public EwcTerm(int experience, long samples, IReadOnlyDictionary<string, Tensor> fisher, IReadOnlyDictionary<string, Tensor> anchor)
    {
        ArgumentNullException.ThrowIfNull(fisher);
        ArgumentNullException.ThrowIfNull(anchor);
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        if (fisher.Count != anchor.Count || fisher.Any(f => !anchor.TryGetValue(f.Key, out var a) || !a.shape.SequenceEqual(f.Value.shape)))
        {
            throw new ArgumentException("The Fisher diagonal and the anchor must name the same parameters with the same shapes.", nameof(anchor));
        }

        Experience = experience;
        Samples = samples;
        Fisher = fisher;
        Anchor = anchor;
    }

    /// <summary>The experience the term was made after (for online EWC, the latest one folded in).</summary>
    public int Experience { get; }

    /// <summary>Samples the Fisher diagonal was estimated on (for online EWC, the latest estimate's).</summary>
    public long Samples { get; }

    /// <summary>The Fisher diagonal, by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> Fisher { get; }

    /// <summary>The anchor weights, by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> Anchor { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var tensor in Fisher.Values.Concat(Anchor.Values))
        {
            tensor.Dispose();
        }
    }
}
