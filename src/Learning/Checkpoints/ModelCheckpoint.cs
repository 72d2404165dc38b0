using Federated.Learning.Weights;

namespace Federated.Learning.Checkpoints;

/// <summary>
/// Saves and restores a model's state in the safetensors format, tensor by tensor under its state-dict name,
/// so that PyTorch users can read it with <c>safetensors.torch.load_file</c>. The layout fingerprint and any
/// caller metadata go into the header's <c>__metadata__</c>.
/// </summary>
public static class ModelCheckpoint
{
    /// <summary>Metadata key holding the <see cref="WeightLayout.Fingerprint"/>.</summary>
    public const string LayoutKey = "federated.layout";

    /// <summary>Writes <paramref name="weights"/>' current values to <paramref name="path"/> (atomically).</summary>
    public static void Save(string path, ModelWeights weights, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var vector = weights.Flatten();
        var tensors = new List<SafeTensor>();
        foreach (var entry in weights.Layout.Entries)
        {
            tensors.Add(SafeTensor.FromSingles(entry.Name, entry.Shape.ToArray(), vector.AsSpan((int)entry.Offset, (int)entry.Length)));
        }

        foreach (var (name, values) in weights.GetIntegerBuffers())
        {
            tensors.Add(SafeTensor.FromInt64(name, values.Length == 1 ? [] : [values.Length], values));
        }

        var header = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [LayoutKey] = weights.Layout.Fingerprint,
        };
        SafeTensorsFile.Write(path, tensors, header);
    }

    /// <summary>
    /// Loads <paramref name="path"/> into the model behind <paramref name="weights"/>. Every float tensor of the
    /// layout must be present with its shape; anything missing, extra or mis-shaped is an error and nothing is loaded.
    /// </summary>
    /// <returns>The file's metadata.</returns>
    public static IReadOnlyDictionary<string, string> Load(string path, ModelWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var content = SafeTensorsFile.Read(path);
        var vector = new float[weights.Layout.TotalLength];
        foreach (var entry in weights.Layout.Entries)
        {
            if (!content.TryGet(entry.Name, out var tensor))
            {
                throw new InvalidDataException($"Checkpoint '{path}' has no tensor '{entry.Name}' that the model needs.");
            }

            if (!tensor.Shape.SequenceEqual(entry.Shape))
            {
                throw new InvalidDataException(
                    $"Checkpoint '{path}' has '{entry.Name}' shaped [{string.Join(", ", tensor.Shape)}], but the model needs [{string.Join(", ", entry.Shape)}].");
            }

            tensor.ToSingles().CopyTo(vector.AsSpan((int)entry.Offset, (int)entry.Length));
        }

        var integerNames = weights.IntegerBufferNames.ToHashSet(StringComparer.Ordinal);
        var unknown = content.Tensors.Select(t => t.Name).Where(n => !weights.Layout.Contains(n) && !integerNames.Contains(n)).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidDataException($"Checkpoint '{path}' has tensors the model does not: {string.Join(", ", unknown.Take(5))}.");
        }

        var integers = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var name in integerNames)
        {
            if (content.TryGet(name, out var tensor))
            {
                integers[name] = tensor.ToInt64();
            }
        }

        weights.Load(vector);
        weights.SetIntegerBuffers(integers);
        return content.Metadata;
    }
}
