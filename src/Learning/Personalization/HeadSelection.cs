using System.Globalization;
using Federated.Learning.Weights;

namespace Federated.Learning.Personalization;

/// <summary>
/// Which weights of a model form FedPer's local head: the entries named by parameter-name prefixes (a prefix
/// <c>fc3</c> takes <c>fc3.weight</c> and <c>fc3.bias</c>; a full name takes that tensor), or the last N layers (the
/// layout's entries grouped by module, in layout order). The head may be neither empty nor the whole model.
/// </summary>
public sealed class HeadSelection
{
    private HeadSelection(IReadOnlyList<string> prefixes, int layers)
    {
        Prefixes = prefixes;
        Layers = layers;
    }

    /// <summary>The prefixes (empty when the head is given as a layer count).</summary>
    public IReadOnlyList<string> Prefixes { get; }

    /// <summary>The number of last layers (0 when the head is given by prefixes).</summary>
    public int Layers { get; }

    /// <summary>A head of the last <paramref name="layers"/> ≥ 1 layers.</summary>
    public static HeadSelection LastLayers(int layers) =>
        layers >= 1 ? new HeadSelection([], layers) : throw new ArgumentOutOfRangeException(nameof(layers), layers, "The head needs at least one layer.");

    /// <summary>A head of the entries matching <paramref name="prefixes"/>: names separated by commas, '+' or blanks (e.g. <c>fc2,fc3</c>).</summary>
    public static HeadSelection ByPrefixes(string prefixes)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        var list = prefixes.Split([',', '+', ' ', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (list.Length == 0)
        {
            throw new ArgumentException("The head names no parameter prefix (e.g. 'fc3').", nameof(prefixes));
        }

        return new HeadSelection(list.Select(p => p.TrimEnd('.')).Distinct(StringComparer.Ordinal).ToArray(), 0);
    }

    /// <summary>The specification as it travels in the round's configuration (see <see cref="FedPer"/>).</summary>
    public string Describe() => Layers > 0 ? Layers.ToString(CultureInfo.InvariantCulture) : string.Join(',', Prefixes);

    /// <summary>The head's entries in <paramref name="layout"/>, in layout order.</summary>
    /// <exception cref="ArgumentException">A prefix matches nothing, or the head is empty or the whole model.</exception>
    public IReadOnlyList<WeightEntry> Resolve(WeightLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var modules = layout.Entries.Select(e => Module(e.Name)).Distinct(StringComparer.Ordinal).ToList();
        List<WeightEntry> head;
        if (Layers > 0)
        {
            if (Layers >= modules.Count)
            {
                throw new ArgumentException($"A head of the last {Layers} layer(s) would be the whole model, which has {modules.Count} layers ({string.Join(", ", modules)}); the shared body must keep at least one.");
            }

            var local = modules.Skip(modules.Count - Layers).ToHashSet(StringComparer.Ordinal);
            head = layout.Entries.Where(e => local.Contains(Module(e.Name))).ToList();
        }
        else
        {
            foreach (var prefix in Prefixes)
            {
                if (!layout.Entries.Any(e => Matches(e.Name, prefix)))
                {
                    throw new ArgumentException($"The head prefix '{prefix}' names no weight of the model; its layers: {string.Join(", ", modules)}.");
                }
            }

            head = layout.Entries.Where(e => Prefixes.Any(p => Matches(e.Name, p))).ToList();
            if (head.Count == layout.Entries.Count)
            {
                throw new ArgumentException($"The head '{Describe()}' takes every weight of the model; the shared body must keep at least one layer.");
            }
        }

        return head;
    }

    /// <summary>Total floats of the head's entries.</summary>
    public static long Length(IReadOnlyList<WeightEntry> head)
    {
        ArgumentNullException.ThrowIfNull(head);
        return head.Sum(e => e.Length);
    }

    /// <summary>Copies the head's entries of <paramref name="model"/> (a whole flattened model) into one vector.</summary>
    public static float[] Extract(IReadOnlyList<WeightEntry> head, ReadOnlySpan<float> model)
    {
        ArgumentNullException.ThrowIfNull(head);
        var values = new float[Length(head)];
        var at = 0;
        foreach (var entry in head)
        {
            model.Slice(checked((int)entry.Offset), checked((int)entry.Length)).CopyTo(values.AsSpan(at));
            at += checked((int)entry.Length);
        }

        return values;
    }

    /// <summary>Writes <paramref name="values"/> (from <see cref="Extract"/>) into the head's entries of <paramref name="model"/>.</summary>
    public static void Insert(IReadOnlyList<WeightEntry> head, ReadOnlySpan<float> values, Span<float> model)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (values.Length != Length(head))
        {
            throw new ArgumentException($"The head holds {Length(head)} floats, not {values.Length}.", nameof(values));
        }

        var at = 0;
        foreach (var entry in head)
        {
            values.Slice(at, checked((int)entry.Length)).CopyTo(model.Slice(checked((int)entry.Offset), checked((int)entry.Length)));
            at += checked((int)entry.Length);
        }
    }

    private static bool Matches(string name, string prefix) =>
        string.Equals(name, prefix, StringComparison.Ordinal) || name.StartsWith(prefix + ".", StringComparison.Ordinal);

    private static string Module(string name)
    {
        var dot = name.LastIndexOf('.');
        return dot < 0 ? name : name[..dot];
    }
}
