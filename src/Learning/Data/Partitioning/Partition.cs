using System.Globalization;
using System.Text;

namespace Federated.Learning.Data.Partitioning;

/// <summary>
/// The result of a federated split: which sample indices each client holds, and the label histogram that follows.
/// </summary>
/// <remarks>
/// Every index appears at most once. A partitioner may leave samples unassigned only where it documents so
/// (<see cref="ShardPartitioner"/> when some label is held by no client); <see cref="Unassigned"/> counts them.
/// </remarks>
public sealed class Partition
{
    private readonly int[][] _clientIndices;
    private readonly int[][] _histogram;

    /// <summary>Builds and validates a partition.</summary>
    /// <param name="clientIndices">The sample indices of each client. Each array is sorted ascending in place and kept (not copied).</param>
    /// <param name="labels">The label of every sample.</param>
    /// <param name="numClasses">The number of classes.</param>
    /// <exception cref="ArgumentException">An index is out of range or assigned twice, or a label is out of range.</exception>
    public Partition(int[][] clientIndices, ReadOnlySpan<int> labels, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(clientIndices);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numClasses);
        if (clientIndices.Length == 0)
        {
            throw new ArgumentException("A partition needs at least one client.", nameof(clientIndices));
        }

        var seen = new bool[labels.Length];
        _histogram = new int[clientIndices.Length][];
        var assigned = 0;
        for (var client = 0; client < clientIndices.Length; client++)
        {
            var indices = clientIndices[client] ?? throw new ArgumentException($"Client {client} has a null index array.", nameof(clientIndices));
            Array.Sort(indices);
            var histogram = new int[numClasses];
            foreach (var index in indices)
            {
                if ((uint)index >= (uint)labels.Length)
                {
                    throw new ArgumentException(
                        $"Client {client} holds sample index {index}, outside [0, {labels.Length}).", nameof(clientIndices));
                }

                if (seen[index])
                {
                    throw new ArgumentException($"Sample index {index} is assigned twice (again to client {client}).", nameof(clientIndices));
                }

                seen[index] = true;
                var label = labels[index];
                if ((uint)label >= (uint)numClasses)
                {
                    throw new ArgumentException($"Sample {index} has label {label}, outside [0, {numClasses}).", nameof(labels));
                }

                histogram[label]++;
            }

            assigned += indices.Length;
            _histogram[client] = histogram;
        }

        _clientIndices = clientIndices;
        NumClasses = numClasses;
        NumSamples = labels.Length;
        Unassigned = labels.Length - assigned;
    }

    /// <summary>The number of clients.</summary>
    public int NumClients => _clientIndices.Length;

    /// <summary>The number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>The number of samples in the dataset that was split.</summary>
    public int NumSamples { get; }

    /// <summary>The number of samples assigned to no client (0 unless the partitioner documents otherwise).</summary>
    public int Unassigned { get; }

    /// <summary>The sample indices of each client, sorted ascending: <c>ClientIndices[client][i]</c>.</summary>
    public IReadOnlyList<int[]> ClientIndices => _clientIndices;

    /// <summary>The number of samples of each class held by each client: <c>LabelHistogram[client][class]</c>.</summary>
    public IReadOnlyList<int[]> LabelHistogram => _histogram;

    /// <summary>The number of samples of <paramref name="client"/>.</summary>
    public int ClientSize(int client) => _clientIndices[client].Length;

    /// <summary>The label distribution of each client: <c>LabelProportions()[client][class]</c>, rows summing to 1 (all zero for an empty client).</summary>
    public double[][] LabelProportions()
    {
        var result = new double[NumClients][];
        for (var client = 0; client < NumClients; client++)
        {
            result[client] = new double[NumClasses];
            var n = _clientIndices[client].Length;
            if (n == 0)
            {
                continue;
            }

            for (var c = 0; c < NumClasses; c++)
            {
                result[client][c] = (double)_histogram[client][c] / n;
            }
        }

        return result;
    }

    /// <summary>Returns a readable table: one row per client with its size and label histogram, then the totals.</summary>
    public string Describe()
    {
        var ci = CultureInfo.InvariantCulture;
        var totals = new int[NumClasses];
        foreach (var row in _histogram)
        {
            for (var c = 0; c < NumClasses; c++)
            {
                totals[c] += row[c];
            }
        }

        var width = Math.Max(5, NumSamples.ToString(ci).Length + 1);
        var sb = new StringBuilder();
        sb.Append(ci, $"{"client",-7}{"n",8} |");
        for (var c = 0; c < NumClasses; c++)
        {
            sb.Append(("c" + c.ToString(ci)).PadLeft(width));
        }

        sb.AppendLine();
        for (var client = 0; client < NumClients; client++)
        {
            sb.Append(ci, $"{client,-7}{_clientIndices[client].Length,8} |");
            AppendRow(sb, _histogram[client], width);
        }

        sb.Append(ci, $"{"total",-7}{NumSamples - Unassigned,8} |");
        AppendRow(sb, totals, width);
        if (Unassigned > 0)
        {
            sb.Append(ci, $"unassigned: {Unassigned}").AppendLine();
        }

        return sb.ToString();
    }

    private static void AppendRow(StringBuilder sb, int[] row, int width)
    {
        foreach (var count in row)
        {
            sb.Append(count.ToString(CultureInfo.InvariantCulture).PadLeft(width));
        }

        sb.AppendLine();
    }
}
