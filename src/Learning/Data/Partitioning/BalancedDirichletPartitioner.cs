namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// Label skew with equal quantities (Hsu, Qi and Brown 2019, "Measuring the effects of non-identical data
/// distribution"; FedLab's balanced Dirichlet): every client gets the same number of samples (N / clients, the
/// remainder spread one each over the first clients), and client i's label mix follows its own
/// <c>q_i ~ Dir(alpha)</c>. Samples are drawn one slot at a time, round-robin over the clients, from per-class pools
/// shuffled by the seed; when a class runs out it is dropped from every client's mix (renormalised), so all samples
/// are used exactly once and no client is left with the leftovers of all the others.
/// </summary>
/// <remarks>
/// The cross-device scale scenarios use it (1,000 clients × 60 samples): NIID-Bench's <see cref="DirichletPartitioner"/>
/// gives unequal sizes, and at 1,000 clients its retry-until-every-client-has-10 rule rarely succeeds.
/// </remarks>
public sealed class BalancedDirichletPartitioner : IPartitioner
{
    /// <summary>Creates the partitioner.</summary>
    /// <param name="alpha">The Dirichlet concentration of each client's label mix, positive and finite.</param>
    public BalancedDirichletPartitioner(double alpha)
    {
        if (!(alpha > 0) || double.IsInfinity(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "The Dirichlet alpha must be positive and finite.");
        }

        Alpha = alpha;
    }

    /// <summary>The Dirichlet concentration of each client's label mix.</summary>
    public double Alpha { get; }

    /// <inheritdoc />
    public string Name => "dirichlet-balanced:" + PartitionHelpers.Format(Alpha);

    /// <inheritdoc />
    public Partition Split(ReadOnlySpan<int> labels, int numClasses, int numClients, ulong seed)
    {
        PartitionHelpers.Validate(labels, numClasses, numClients);
        var rng = new StableRandom(seed);
        var (byClass, offsets) = PartitionHelpers.GroupByClass(labels, numClasses);
        var next = new int[numClasses];
        for (var c = 0; c < numClasses; c++)
        {
            rng.Shuffle(byClass.AsSpan(offsets[c], offsets[c + 1] - offsets[c]));
            next[c] = offsets[c];
        }

        var mixes = new double[numClients][];
        var clients = new List<int>[numClients];
        var sizes = new int[numClients];
        for (var i = 0; i < numClients; i++)
        {
            mixes[i] = rng.Dirichlet(Alpha, numClasses);
            sizes[i] = PartitionHelpers.EvenPartStart(labels.Length, numClients, i + 1) - PartitionHelpers.EvenPartStart(labels.Length, numClients, i);
            clients[i] = new List<int>(sizes[i]);
        }

        var largest = sizes.Max();
        for (var slot = 0; slot < largest; slot++)
        {
            for (var i = 0; i < numClients; i++)
            {
                if (slot < sizes[i])
                {
                    var c = DrawClass(rng, mixes[i], next, offsets);
                    clients[i].Add(byClass[next[c]++]);
                }
            }
        }

        return new Partition(PartitionHelpers.ToArrays(clients), labels, numClasses);
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>Draws a class from <paramref name="mix"/> restricted to the classes with samples left.</summary>
    private static int DrawClass(StableRandom rng, double[] mix, int[] next, int[] offsets)
    {
        var total = 0.0;
        var lastAvailable = -1;
        for (var c = 0; c < mix.Length; c++)
        {
            if (next[c] < offsets[c + 1])
            {
                total += mix[c];
                lastAvailable = c;
            }
        }

        if (!(total > 0))
        {
            // The client's mix has no mass on the classes left (alpha tiny): take any class that still has samples.
            return lastAvailable;
        }

        var u = rng.NextDouble() * total;
        for (var c = 0; c < mix.Length; c++)
        {
            if (next[c] < offsets[c + 1])
            {
                u -= mix[c];
                if (u < 0)
                {
                    return c;
                }
            }
        }

        return lastAvailable;
    }
}
