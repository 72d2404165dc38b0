using System.Globalization;

namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// "k labels per client" (NIID-Bench <c>noniid-#label{k}</c>): every client is given exactly k distinct labels,
/// and each label's shuffled samples are split evenly (sizes differing by at most one) among the clients holding it.
/// </summary>
/// <remarks>
/// <para>
/// Label sets follow NIID-Bench: client <c>i</c> first gets label <c>i mod C</c>, then random distinct labels
/// until it has k. When there are fewer clients than classes but <c>numClients × k ≥ C</c>, client <c>i</c>
/// instead starts with every label <c>j</c> where <c>j mod numClients = i</c>, so that every label is held by
/// some client and every sample is assigned exactly once.
/// </para>
/// <para>
/// When <c>numClients × k &lt; C</c> some labels cannot be held by anyone: their samples are left unassigned and
/// counted in <see cref="Partition.Unassigned"/>. A client's histogram shows fewer than k labels only if a label
/// has fewer samples than clients holding it.
/// </para>
/// </remarks>
public sealed class ShardPartitioner : IPartitioner
{
    /// <summary>Creates the partitioner.</summary>
    /// <param name="labelsPerClient">k, the number of distinct labels each client holds; at least 1.</param>
    public ShardPartitioner(int labelsPerClient)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(labelsPerClient);
        LabelsPerClient = labelsPerClient;
    }

    /// <summary>k, the number of distinct labels each client holds.</summary>
    public int LabelsPerClient { get; }

    /// <inheritdoc />
    public string Name => "shards:" + LabelsPerClient.ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public Partition Split(ReadOnlySpan<int> labels, int numClasses, int numClients, ulong seed)
    {
        PartitionHelpers.Validate(labels, numClasses, numClients);
        var k = LabelsPerClient;
        if (k > numClasses)
        {
            throw new ArgumentException(
                $"Cannot give each client {k} distinct labels: there are only {numClasses} classes.", nameof(numClasses));
        }

        var rng = new StableRandom(seed);
        var coverAll = numClients < numClasses && (long)numClients * k >= numClasses;

        // holds[client * numClasses + label]
        var holds = new bool[numClients * numClasses];
        var holders = new int[numClasses];
        for (var client = 0; client < numClients; client++)
        {
            var row = holds.AsSpan(client * numClasses, numClasses);
            var have = 0;
            if (coverAll)
            {
                for (var label = client; label < numClasses; label += numClients)
                {
                    row[label] = true;
                    have++;
                }
            }
            else
            {
                row[client % numClasses] = true;
                have = 1;
            }

            while (have < k)
            {
                var label = rng.Next(numClasses);
                if (!row[label])
                {
                    row[label] = true;
                    have++;
                }
            }

            for (var label = 0; label < numClasses; label++)
            {
                if (row[label])
                {
                    holders[label]++;
                }
            }
        }

        var (byClass, offsets) = PartitionHelpers.GroupByClass(labels, numClasses);
        var sizes = new int[numClients];
        for (var label = 0; label < numClasses; label++)
        {
            if (holders[label] == 0)
            {
                continue;
            }

            var count = offsets[label + 1] - offsets[label];
            var part = 0;
            for (var client = 0; client < numClients; client++)
            {
                if (holds[(client * numClasses) + label])
                {
                    sizes[client] += PartitionHelpers.EvenPartStart(count, holders[label], part + 1)
                        - PartitionHelpers.EvenPartStart(count, holders[label], part);
                    part++;
                }
            }
        }

        var clients = new int[numClients][];
        var fill = new int[numClients];
        for (var client = 0; client < numClients; client++)
        {
            clients[client] = new int[sizes[client]];
        }

        for (var label = 0; label < numClasses; label++)
        {
            if (holders[label] == 0)
            {
                continue;
            }

            var classIndices = byClass.AsSpan(offsets[label], offsets[label + 1] - offsets[label]);
            rng.Shuffle(classIndices);
            var part = 0;
            for (var client = 0; client < numClients; client++)
            {
                if (holds[(client * numClasses) + label])
                {
                    var start = PartitionHelpers.EvenPartStart(classIndices.Length, holders[label], part);
                    var end = PartitionHelpers.EvenPartStart(classIndices.Length, holders[label], part + 1);
                    classIndices[start..end].CopyTo(clients[client].AsSpan(fill[client]));
                    fill[client] += end - start;
                    part++;
                }
            }
        }

        return new Partition(clients, labels, numClasses);
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
