namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// The IID baseline: shuffles all samples and deals them out in contiguous runs whose sizes differ by at most one.
/// Every sample is assigned exactly once.
/// </summary>
public sealed class IidPartitioner : IPartitioner
{
    /// <inheritdoc />
    public string Name => "iid";

    /// <inheritdoc />
    public Partition Split(ReadOnlySpan<int> labels, int numClasses, int numClients, ulong seed)
    {
        PartitionHelpers.Validate(labels, numClasses, numClients);
        var rng = new StableRandom(seed);
        var order = new int[labels.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        rng.Shuffle<int>(order);
        var clients = new int[numClients][];
        for (var client = 0; client < numClients; client++)
        {
            var start = PartitionHelpers.EvenPartStart(order.Length, numClients, client);
            var end = PartitionHelpers.EvenPartStart(order.Length, numClients, client + 1);
            clients[client] = order[start..end];
        }

        return new Partition(clients, labels, numClasses);
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
