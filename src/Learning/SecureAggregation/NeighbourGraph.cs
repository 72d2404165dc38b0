using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// The SecAgg+ communication graph (Bell et al. 2020): a random k-regular Harary graph. The agents 0 … n−1 are placed
/// on a circle in a random order drawn from a seed the coordinator announces, and each is joined to the k/2 agents on
/// either side; with k = n − 1 the graph is complete, which is the original protocol of Bonawitz et al. 2017. Agents
/// share keys and masks only with their neighbours.
/// </summary>
public sealed class NeighbourGraph
{
    private readonly int[][] _neighbours;
    private readonly HashSet<long> _edges = [];

    private NeighbourGraph(int agents, int degree, int[][] neighbours)
    {
        Agents = agents;
        Degree = degree;
        _neighbours = neighbours;
        for (var u = 0; u < agents; u++)
        {
            foreach (var v in neighbours[u])
            {
                _edges.Add(((long)u << 32) | (uint)v);
            }
        }
    }

    /// <summary>n: the agents, numbered 0 … n − 1.</summary>
    public int Agents { get; }

    /// <summary>k: the neighbours of every agent.</summary>
    public int Degree { get; }

    /// <summary>
    /// The default degree for <paramref name="agents"/> agents: 2⌈log₂ n⌉, at most n − 1 (8 for n = 10, 14 for
    /// n = 100, 18 for n = 500).
    /// </summary>
    public static int DefaultDegree(int agents)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 2);
        var degree = 2 * (int)Math.Ceiling(Math.Log2(agents));
        return Math.Min(agents - 1, degree);
    }

    /// <summary>
    /// The Harary graph of <paramref name="agents"/> agents with <paramref name="degree"/> neighbours each (even and
    /// at most n − 2, or n − 1 for the complete graph), its circle order drawn from <paramref name="seed"/>.
    /// </summary>
    public static NeighbourGraph Create(int agents, int degree, ReadOnlySpan<byte> seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 2);
        if (degree != agents - 1 && (degree < 2 || degree % 2 != 0 || degree > agents - 2))
        {
            throw new ArgumentOutOfRangeException(nameof(degree), degree, $"The degree must be even and between 2 and {agents - 2}, or {agents - 1} (complete).");
        }

        var neighbours = new int[agents][];
        if (degree == agents - 1)
        {
            for (var u = 0; u < agents; u++)
            {
                neighbours[u] = [.. Enumerable.Range(0, agents).Where(v => v != u)];
            }

            return new NeighbourGraph(agents, degree, neighbours);
        }

        // A uniform random circle order (Fisher–Yates on a cryptographic stream, rejection-free via 64-bit modulo;
        // the bias is below 2⁻³² for any realistic n).
        var random = new ChaCha20Random(seed);
        var order = Enumerable.Range(0, agents).ToArray();
        for (var i = agents - 1; i > 0; i--)
        {
            var j = (int)(random.NextUInt64() % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }

        for (var position = 0; position < agents; position++)
        {
            var list = new List<int>(degree);
            for (var step = 1; step <= degree / 2; step++)
            {
                list.Add(order[(position + step) % agents]);
                list.Add(order[(position - step + agents) % agents]);
            }

            list.Sort();
            neighbours[order[position]] = [.. list];
        }

        return new NeighbourGraph(agents, degree, neighbours);
    }

    /// <summary>The neighbours of <paramref name="agent"/>, ascending.</summary>
    public IReadOnlyList<int> Neighbours(int agent) => _neighbours[agent];

    /// <summary>Whether <paramref name="u"/> and <paramref name="v"/> are neighbours.</summary>
    public bool AreNeighbours(int u, int v) => _edges.Contains(((long)u << 32) | (uint)v);
}
