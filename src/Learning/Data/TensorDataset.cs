using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Data;

/// <summary>
/// A data set materialised once as two tensors on the training device: features [N, …] (float32, normalised)
/// and labels [N] (int64). Batches are slices or one <c>index_select</c> of these, so the training loop spends
/// no time in data handling.
/// </summary>
public sealed class TensorDataset : IDisposable
{
    private readonly int[] _labels;

    private TensorDataset(string name, Tensor features, Tensor labels, int[] hostLabels, int numClasses)
    {
        Name = name;
        Features = features;
        LabelTensor = labels;
        _labels = hostLabels;
        NumClasses = numClasses;
    }

    /// <summary>A short name for logs.</summary>
    public string Name { get; }

    /// <summary>Features [N, …], float32, on <see cref="Device"/>.</summary>
    public Tensor Features { get; }

    /// <summary>Labels [N], int64, on <see cref="Device"/>.</summary>
    public Tensor LabelTensor { get; }

    /// <summary>Labels on the host, for partitioning and reports.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>Number of samples.</summary>
    public int Count => _labels.Length;

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Shape of one sample.</summary>
    public long[] SampleShape => Features.shape[1..];

    /// <summary>The device the tensors live on.</summary>
    public Device Device => Features.device;

    /// <summary>Reads every sample of <paramref name="source"/>, normalises it and moves it to <paramref name="device"/>.</summary>
    /// <param name="source">The samples.</param>
    /// <param name="normalization">Applied once to every sample.</param>
    /// <param name="device">Where the tensors live.</param>
    /// <param name="numClasses">The class count when it exceeds the source's (e.g. a test split missing a class).</param>
    public static TensorDataset Materialize(ILabelledSource source, Normalization normalization, Device device, int? numClasses = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(normalization);
        if (numClasses < source.NumClasses)
        {
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, $"The source already has {source.NumClasses} classes.");
        }

        var shape = source.SampleShape;
        var sampleSize = shape.Aggregate(1, (a, b) => checked(a * b));
        var features = new float[checked((long)source.Count * sampleSize)];
        for (var i = 0; i < source.Count; i++)
        {
            var sample = features.AsSpan(i * sampleSize, sampleSize);
            source.CopyFeatures(i, sample);
            normalization.Apply(sample, shape[0]);
        }

        var labels = source.Labels.ToArray();
        var dims = new long[shape.Count + 1];
        dims[0] = source.Count;
        for (var d = 0; d < shape.Count; d++)
        {
            dims[d + 1] = shape[d];
        }

        using var hostFeatures = torch.tensor(features, dims);
        using var hostLabels = torch.tensor(labels.Select(l => (long)l).ToArray());
        return new TensorDataset(
            source.Name,
            hostFeatures.to(device).DetachFromDisposeScope(),
            hostLabels.to(device).DetachFromDisposeScope(),
            labels,
            numClasses ?? source.NumClasses);
    }

    /// <summary>
    /// Wraps tensors that already exist — features [N, …] float32 and int64 labels [N] on one device — taking ownership
    /// of both (they leave any dispose scope).
    /// </summary>
    public static TensorDataset FromTensors(string name, Tensor features, Tensor labels, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.dim() != 1 || features.dim() < 2 || features.shape[0] != labels.shape[0])
        {
            throw new ArgumentException($"Features [{string.Join(", ", features.shape)}] and labels [{string.Join(", ", labels.shape)}] do not describe one data set.");
        }

        using var hostLabels = labels.to(ScalarType.Int64).cpu();
        var host = hostLabels.data<long>().ToArray();
        var ints = new int[host.Length];
        for (var i = 0; i < host.Length; i++)
        {
            if ((ulong)host[i] >= (ulong)numClasses)
            {
                throw new ArgumentOutOfRangeException(nameof(labels), host[i], $"Label outside 0..{numClasses - 1}.");
            }

            ints[i] = (int)host[i];
        }

        return new TensorDataset(name, features.DetachFromDisposeScope(), labels.to(ScalarType.Int64).DetachFromDisposeScope(), ints, numClasses);
    }

    /// <summary>The samples of <paramref name="parts"/> one after the other, as a new dataset (same device, shapes and class count).</summary>
    public static TensorDataset Concatenate(IReadOnlyList<TensorDataset> parts, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0)
        {
            throw new ArgumentException("Nothing to concatenate.", nameof(parts));
        }

        using var scope = torch.NewDisposeScope();
        var features = torch.cat(parts.Select(p => p.Features).ToList(), 0).MoveToOuterDisposeScope();
        var labels = torch.cat(parts.Select(p => p.LabelTensor).ToList(), 0).MoveToOuterDisposeScope();
        return FromTensors(name ?? string.Join("+", parts.Select(p => p.Name)), features, labels, parts.Max(p => p.NumClasses));
    }

    /// <summary>The samples at <paramref name="indices"/>, as a new dataset on the same device.</summary>
    public TensorDataset Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        var picked = new long[indices.Length];
        var labels = new int[indices.Length];
        for (var i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"Index outside 0..{Count - 1}.");
            }

            picked[i] = indices[i];
            labels[i] = _labels[indices[i]];
        }

        using var scope = torch.NewDisposeScope();
        var index = torch.tensor(picked).to(Device);
        var features = Features.index_select(0, index).MoveToOuterDisposeScope();
        var labelTensor = LabelTensor.index_select(0, index).MoveToOuterDisposeScope();
        return new TensorDataset(name ?? Name, features.DetachFromDisposeScope(), labelTensor.DetachFromDisposeScope(), labels, NumClasses);
    }

    /// <summary>
    /// The same samples with <paramref name="labels"/> instead (e.g. flipped ones, for a data-poisoning attack), as a new
    /// dataset whose features share this one's storage; each dataset must still be disposed.
    /// </summary>
    public TensorDataset WithLabels(ReadOnlySpan<int> labels, string? name = null)
    {
        if (labels.Length != Count)
        {
            throw new ArgumentException($"{labels.Length} labels for {Count} samples.", nameof(labels));
        }

        var copy = labels.ToArray();
        var wide = new long[copy.Length];
        for (var i = 0; i < copy.Length; i++)
        {
            if ((uint)copy[i] >= (uint)NumClasses)
            {
                throw new ArgumentOutOfRangeException(nameof(labels), copy[i], $"Label outside 0..{NumClasses - 1}.");
            }

            wide[i] = copy[i];
        }

        using var hostLabels = torch.tensor(wide);
        return new TensorDataset(name ?? Name, Features.alias().DetachFromDisposeScope(), hostLabels.to(Device).DetachFromDisposeScope(), copy, NumClasses);
    }

    /// <summary>Per-class sample counts.</summary>
    public int[] LabelHistogram()
    {
        var histogram = new int[NumClasses];
        foreach (var label in _labels)
        {
            histogram[label]++;
        }

        return histogram;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Features.Dispose();
        LabelTensor.Dispose();
    }
}
