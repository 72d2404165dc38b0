using System.Globalization;

namespace Federated.Learning.Data.Partitioning;

/// <summary>Validation and grouping shared by the partitioners.</summary>
internal static class PartitionHelpers
{
    /// <summary>Checks the common arguments of <see cref="IPartitioner.Split"/>.</summary>
    public static void Validate(ReadOnlySpan<int> labels, int numClasses, int numClients)
    {
        if (numClients < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numClients), numClients, "There must be at least one client.");
        }

        if (numClasses < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "There must be at least one class.");
        }

        if (labels.Length < numClients)
        {
            throw new ArgumentException(
                $"Cannot split {labels.Length} samples across {numClients} clients: every client needs at least one sample.",
                nameof(labels));
        }

        for (var i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)numClasses)
            {
                throw new ArgumentException(
                    $"Sample {i} has label {labels[i]}, outside [0, {numClasses}).", nameof(labels));
            }
        }
    }

    /// <summary>
    /// Groups the sample indices by class (a counting sort): the indices of class <c>c</c> are
    /// <c>byClass[offsets[c]..offsets[c + 1]]</c>, ascending.
    /// </summary>
    public static (int[] ByClass, int[] Offsets) GroupByClass(ReadOnlySpan<int> labels, int numClasses)
    {
        var offsets = new int[numClasses + 1];
        foreach (var label in labels)
        {
            offsets[label + 1]++;
        }

        for (var c = 0; c < numClasses; c++)
        {
            offsets[c + 1] += offsets[c];
        }

        var cursor = offsets.AsSpan(0, numClasses).ToArray();
        var byClass = new int[labels.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            byClass[cursor[labels[i]]++] = i;
        }

        return (byClass, offsets);
    }

    /// <summary>Splits <paramref name="count"/> items into <paramref name="parts"/> runs whose sizes differ by at most one, the first runs larger (numpy's <c>array_split</c>).</summary>
    public static int EvenPartStart(int count, int parts, int part)
    {
        var baseSize = count / parts;
        var extra = count % parts;
        return (part * baseSize) + Math.Min(part, extra);
    }

    /// <summary>
    /// Turns proportions into cut points over <paramref name="count"/> items the numpy way:
    /// <c>(cumsum(p) * count).astype(int)[:-1]</c>; the last cut is <paramref name="count"/>.
    /// </summary>
    public static void CutPoints(ReadOnlySpan<double> proportions, int count, Span<int> cuts)
    {
        var cumulative = 0.0;
        for (var i = 0; i < proportions.Length - 1; i++)
        {
            cumulative += proportions[i];
            cuts[i] = Math.Clamp((int)(cumulative * count), 0, count);
        }

        cuts[proportions.Length - 1] = count;

        // Guard against rounding making a cut go backwards.
        for (var i = 1; i < proportions.Length; i++)
        {
            cuts[i] = Math.Max(cuts[i], cuts[i - 1]);
        }
    }

    public static int[][] ToArrays(List<int>[] lists)
    {
        var result = new int[lists.Length][];
        for (var i = 0; i < lists.Length; i++)
        {
            result[i] = [.. lists[i]];
        }

        return result;
    }

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
