using System.Security.Cryptography;
using System.Text;

namespace Federated.Learning.Weights;

/// <summary>What a slice of a weight vector holds.</summary>
public enum WeightKind
{
    /// <summary>A trainable parameter.</summary>
    Parameter,

    /// <summary>A floating-point buffer (e.g. batch-norm running mean and variance).</summary>
    Buffer,
}

/// <summary>One named tensor inside a flat weight vector.</summary>
/// <param name="Name">State-dict name, e.g. <c>conv1.weight</c>.</param>
/// <param name="Shape">Tensor shape.</param>
/// <param name="Offset">First element in the vector.</param>
/// <param name="Length">Number of elements.</param>
/// <param name="Kind">Parameter or floating-point buffer.</param>
public sealed record WeightEntry(string Name, IReadOnlyList<long> Shape, long Offset, long Length, WeightKind Kind);

/// <summary>
/// The layout of a flat float32 weight vector: names, shapes and offsets, in state-dict order. Two vectors can be
/// combined only when their layouts have the same <see cref="Fingerprint"/>.
/// </summary>
public sealed class WeightLayout
{
    private readonly Dictionary<string, WeightEntry> _byName;

    /// <summary>Builds a layout from (name, shape, kind) triples, assigning contiguous offsets.</summary>
    public WeightLayout(IEnumerable<(string Name, long[] Shape, WeightKind Kind)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = new List<WeightEntry>();
        _byName = new Dictionary<string, WeightEntry>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, shape, kind) in tensors)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException("Weight names must be non-empty.", nameof(tensors));
            }

            var length = shape.Aggregate(1L, (a, b) => b < 0 ? throw new ArgumentException($"'{name}' has a negative dimension.") : checked(a * b));
            var entry = new WeightEntry(name, shape.ToArray(), offset, length, kind);
            if (!_byName.TryAdd(name, entry))
            {
                throw new ArgumentException($"Weight name '{name}' appears twice.", nameof(tensors));
            }

            entries.Add(entry);
            offset = checked(offset + length);
        }

        Entries = entries;
        TotalLength = offset;
        Fingerprint = ComputeFingerprint(entries);
    }

    /// <summary>Entries in vector order.</summary>
    public IReadOnlyList<WeightEntry> Entries { get; }

    /// <summary>Number of floats in a vector of this layout.</summary>
    public long TotalLength { get; }

    /// <summary>Hex SHA-256 (first 16 bytes) over names, shapes and kinds: equal layouts, equal fingerprints.</summary>
    public string Fingerprint { get; }

    /// <summary>Number of trainable parameters (excludes buffers).</summary>
    public long ParameterCount => Entries.Where(e => e.Kind == WeightKind.Parameter).Sum(e => e.Length);

    /// <summary>The entry called <paramref name="name"/>.</summary>
    public WeightEntry this[string name] =>
        _byName.TryGetValue(name, out var entry) ? entry : throw new KeyNotFoundException($"The layout has no tensor '{name}'.");

    /// <summary>True when the layout has a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Throws a clear error unless <paramref name="other"/> is the same layout.</summary>
    public void EnsureCompatible(WeightLayout other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Fingerprint == Fingerprint)
        {
            return;
        }

        var firstDifference = Entries.Zip(other.Entries)
            .FirstOrDefault(p => p.First.Name != p.Second.Name || !p.First.Shape.SequenceEqual(p.Second.Shape));
        var detail = firstDifference.First is null
            ? $"{Entries.Count} vs {other.Entries.Count} tensors"
            : $"'{firstDifference.First.Name}' [{string.Join(",", firstDifference.First.Shape)}] vs '{firstDifference.Second.Name}' [{string.Join(",", firstDifference.Second.Shape)}]";
        throw new InvalidOperationException($"Weight layouts differ ({Fingerprint} vs {other.Fingerprint}): {detail}.");
    }

    private static string ComputeFingerprint(IEnumerable<WeightEntry> entries)
    {
        var text = new StringBuilder();
        foreach (var e in entries)
        {
            text.Append(e.Name).Append(':').Append(string.Join('x', e.Shape)).Append(':').Append(e.Kind).Append(';');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())).AsSpan(0, 16));
    }
}
