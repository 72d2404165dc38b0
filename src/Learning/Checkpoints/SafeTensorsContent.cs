using System.Diagnostics.CodeAnalysis;

namespace Federated.Learning.Checkpoints;

/// <summary>The tensors and metadata read from a safetensors file.</summary>
public sealed class SafeTensorsContent
{
    private readonly Dictionary<string, SafeTensor> _byName;

    internal SafeTensorsContent(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata, string sourceName)
    {
        Tensors = tensors;
        Metadata = metadata;
        SourceName = sourceName;
        _byName = new Dictionary<string, SafeTensor>(tensors.Count, StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            _byName.Add(tensor.Name, tensor);
        }
    }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<SafeTensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The path or name the content was read from.</summary>
    public string SourceName { get; }

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    public SafeTensor this[string name] => _byName.TryGetValue(name, out var tensor)
        ? tensor
        : throw new KeyNotFoundException($"'{SourceName}' has no tensor named '{name}' (it has {_byName.Count}).");

    /// <summary>Looks up a tensor by name.</summary>
    public bool TryGet(string name, [NotNullWhen(true)] out SafeTensor? tensor) => _byName.TryGetValue(name, out tensor);
}
