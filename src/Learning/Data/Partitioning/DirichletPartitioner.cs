using System.Globalization;

namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// Label-distribution skew by a Dirichlet prior (NIID-Bench <c>noniid-labeldir</c>, Flower's <c>DirichletPartitioner</c>):
/// for each class, proportions <c>p ~ Dir(alpha)</c> over the clients decide how that class's shuffled samples
/// are cut. Small alpha (0.1) gives each client few dominant classes; large alpha (100) approaches IID.
/// Every sample is assigned exactly once.
/// </summary>
/// <remarks>
/// As in NIID-Bench, a client that already holds at least <c>N / numClients</c> samples gets proportion zero
/// for the remaining classes, which keeps client sizes from running away. The whole draw is repeated until
/// every client holds at least <see cref="MinSamplesPerClient"/> samples.
/// </remarks>
public sealed class DirichletPartitioner : IPartitioner
{
    /// <summary>Creates the partitioner.</summary>
    /// <param name="alpha">The Dirichlet concentration, positive and finite.</param>
    /// <param name="minSamplesPerClient">The fewest samples any client may end with (NIID-Bench uses 10).</param>
    /// <param name="maxRetries">How many complete draws to try before giving up.</param>
    public DirichletPartitioner(double alpha, int minSamplesPerClient = 10, int maxRetries = 100)
    {
        if (!(alpha > 0) || double.IsInfinity(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "The Dirichlet alpha must be positive and finite.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(minSamplesPerClient);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRetries);
        Alpha = alpha;
        MinSamplesPerClient = minSamplesPerClient;
        MaxRetries = maxRetries;
    }

    /// <summary>The Dirichlet concentration.</summary>
    public double Alpha { get; }

    /// <summary>The fewest samples any client may end with.</summary>
    public int MinSamplesPerClient { get; }

    /// <summary>How many complete draws are tried before giving up.</summary>
    public int MaxRetries { get; }

    /// <inheritdoc />
    public string Name => "dirichlet:" + PartitionHelpers.Format(Alpha);

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
        var (byClass, offsets) = PartitionHelpers.GroupByClass(labels, numClasses);
        var fairShare = (double)labels.Length / numClients;
        var clients = new List<int>[numClients];
        for (var i = 0; i < numClients; i++)
        {
            clients[i] = new List<int>((int)Math.Ceiling(fairShare) + 1);
        }

        var proportions = new double[numClients];
        var cuts = new int[numClients];
        var smallest = 0;
        for (var attempt = 1; attempt <= MaxRetries; attempt++)
        {
            foreach (var list in clients)
            {
                list.Clear();
            }

            for (var c = 0; c < numClasses; c++)
            {
                var classIndices = byClass.AsSpan(offsets[c], offsets[c + 1] - offsets[c]);
                rng.Shuffle(classIndices);
                rng.Dirichlet(Alpha, proportions);

                var sum = 0.0;
                for (var i = 0; i < numClients; i++)
                {
                    if (clients[i].Count >= fairShare)
                    {
                        proportions[i] = 0;
                    }

                    sum += proportions[i];
                }

                if (sum > 0)
                {
                    for (var i = 0; i < numClients; i++)
                    {
                        proportions[i] /= sum;
                    }
                }
                else
                {
                    // Every client is full (only possible through rounding): fall back to an even split.
                    proportions.AsSpan().Fill(1.0 / numClients);
                }

                PartitionHelpers.CutPoints(proportions, classIndices.Length, cuts);
                var start = 0;
                for (var i = 0; i < numClients; i++)
                {
                    clients[i].AddRange(classIndices[start..cuts[i]]);
                    start = cuts[i];
                }
            }

            smallest = int.MaxValue;
            foreach (var list in clients)
            {
                smallest = Math.Min(smallest, list.Count);
            }

            if (smallest >= MinSamplesPerClient)
            {
                return new Partition(PartitionHelpers.ToArrays(clients), labels, numClasses);
            }
        }

        throw new InvalidOperationException(string.Create(
            CultureInfo.InvariantCulture,
            $"Dirichlet partition (alpha={Alpha}) of {labels.Length} samples over {numClients} clients failed: after {MaxRetries} draws some client still had fewer than {MinSamplesPerClient} samples (the last draw's smallest client had {smallest}). The combination is too strict: raise alpha, lower minSamplesPerClient, use fewer clients or allow more retries."));
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
