using System.Globalization;

namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// Quantity skew (NIID-Bench <c>iid-diff-quantity</c>): client sizes follow proportions <c>q ~ Dir(beta)</c>
/// over the clients, while labels stay IID (the samples are shuffled before they are cut). Small beta (0.1)
/// gives very unequal sizes; large beta (100) nearly equal ones. Every sample is assigned exactly once.
/// </summary>
/// <remarks>The proportions are redrawn until every client gets at least <see cref="MinSamplesPerClient"/> samples.</remarks>
public sealed class QuantitySkewPartitioner : IPartitioner
{
    /// <summary>Creates the partitioner.</summary>
    /// <param name="beta">The Dirichlet concentration of the client sizes, positive and finite.</param>
    /// <param name="minSamplesPerClient">The fewest samples any client may get (NIID-Bench uses 10).</param>
    /// <param name="maxRetries">How many draws of the proportions to try; each costs only O(numClients).</param>
    public QuantitySkewPartitioner(double beta, int minSamplesPerClient = 10, int maxRetries = 100_000)
    {
        if (!(beta > 0) || double.IsInfinity(beta))
        {
            throw new ArgumentOutOfRangeException(nameof(beta), beta, "The quantity-skew beta must be positive and finite.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(minSamplesPerClient);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRetries);
        Beta = beta;
        MinSamplesPerClient = minSamplesPerClient;
        MaxRetries = maxRetries;
    }

    /// <summary>The Dirichlet concentration of the client sizes.</summary>
    public double Beta { get; }

    /// <summary>The fewest samples any client may get.</summary>
    public int MinSamplesPerClient { get; }

    /// <summary>How many draws of the proportions are tried before giving up.</summary>
    public int MaxRetries { get; }

    /// <inheritdoc />
    public string Name => "quantity:" + PartitionHelpers.Format(Beta);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">No draw in <see cref="MaxRetries"/> gave every client enough samples.</exception>
    public Partition Split(ReadOnlySpan<int> labels, int numClasses, int numClients, ulong seed)
    {
        PartitionHelpers.Validate(labels, numClasses, numClients);
        if ((long)numClients * MinSamplesPerClient > labels.Length)
        {
            throw new ArgumentException(
                $"Cannot give {numClients} clients at least {MinSamplesPerClient} samples each from only {labels.Length} samples.",
                nameof(labels));
        }

        var rng = new StableRandom(seed);
        var order = new int[labels.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        rng.Shuffle<int>(order);
        var proportions = new double[numClients];
        var cuts = new int[numClients];
        for (var attempt = 1; attempt <= MaxRetries; attempt++)
        {
            rng.Dirichlet(Beta, proportions);
            PartitionHelpers.CutPoints(proportions, order.Length, cuts);
            var start = 0;
            var ok = true;
            for (var i = 0; i < numClients && ok; i++)
            {
                ok = cuts[i] - start >= MinSamplesPerClient;
                start = cuts[i];
            }

            if (!ok)
            {
                continue;
            }

            var clients = new int[numClients][];
            start = 0;
            for (var i = 0; i < numClients; i++)
            {
                clients[i] = order[start..cuts[i]];
                start = cuts[i];
            }

            return new Partition(clients, labels, numClasses);
        }

        throw new InvalidOperationException(string.Create(
            CultureInfo.InvariantCulture,
            $"Quantity-skew partition (beta={Beta}) of {labels.Length} samples over {numClients} clients failed: after {MaxRetries} draws some client still had fewer than {MinSamplesPerClient} samples. The combination is too strict: raise beta, lower minSamplesPerClient or use fewer clients."));
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
