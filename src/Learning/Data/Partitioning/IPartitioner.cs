namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// Splits a labelled dataset across federated clients. Implementations are pure and deterministic:
/// the same labels, arguments and seed always give the same <see cref="Partition"/>.
/// </summary>
public interface IPartitioner
{
    /// <summary>A spec string that <see cref="Partitioners.Parse"/> turns back into an equivalent partitioner, e.g. <c>dirichlet:0.5</c>.</summary>
    string Name { get; }

    /// <summary>Assigns sample indices to clients.</summary>
    /// <param name="labels">The label of every sample, in <c>[0, numClasses)</c>.</param>
    /// <param name="numClasses">The number of classes.</param>
    /// <param name="numClients">The number of clients, at least 1.</param>
    /// <param name="seed">The seed of the <see cref="StableRandom"/> that drives every random choice.</param>
    /// <exception cref="ArgumentException">The arguments are invalid or cannot be satisfied.</exception>
    Partition Split(ReadOnlySpan<int> labels, int numClasses, int numClients, ulong seed);
}
