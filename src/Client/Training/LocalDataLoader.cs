using Federated.Client.Hosting;
using Federated.Learning.Data;
using Federated.Learning.Data.Partitioning;
using static TorchSharp.torch;

namespace Federated.Client.Training;

/// <summary>Loads the agent's share of the data set once: source → partition → optional cap → tensors on the device.</summary>
internal static class LocalDataLoader
{
    /// <summary>The sample shape of the synthetic source.</summary>
    public static IReadOnlyList<int> SyntheticSampleShape { get; } = [1, 28, 28];

    /// <summary>
    /// Opens the configured source (IDX files, synthetic images, a CSV file or an image folder), before partitioning.
    /// Every source is an <see cref="ILabelledSource"/>; a bad file is an <see cref="InvalidDataException"/> naming it (and the row).
    /// </summary>
    public static ILabelledSource OpenSource(ClientDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.SourceKind switch
        {
            "synthetic" => SyntheticImages.Create(options.SyntheticCount, SyntheticSampleShape, options.SyntheticClasses, unchecked((int)options.Seed)),
            "csv" => CsvSource.Load(options.Path!, options.GetCsvSchema()),
            "images" => ImageFolderSource.Load(options.Directory, options.ImageWidth, options.ImageHeight, options.ImageChannels),
            "idx" => OpenIdx(options.Directory, options.Split),
            ClientDataOptions.CustomSource => throw new InvalidOperationException("Client:Data:Source is custom: the application's IDataSourceProvider opens it (see Load)."),
            _ => throw new ArgumentException($"Client:Data:Source must be one of {string.Join(", ", ClientDataOptions.Sources)}, not '{options.Source}'."),
        };
    }

    /// <summary>The configured source, or the application's own for the <c>custom</c> kind.</summary>
    private static ILabelledSource Open(ClientDataOptions options, IDataSourceProvider? custom) =>
        options.SourceKind == ClientDataOptions.CustomSource
            ? (custom ?? throw new InvalidOperationException("Client:Data:Source is custom but no data source is registered; call AddFederatedDataSource.")).Open(options)
            : OpenSource(options);

    private static readonly Lock SourceGate = new();
    private static readonly Dictionary<(string Directory, string Split), WeakReference<IdxImageSource>> Sources = [];

    /// <summary>
    /// Agents hosted in one process (simulations) share one parsed copy of an IDX split while they load: the first
    /// parses it, the others wait and reuse it. Weakly held, so it is freed once every agent has taken its share.
    /// </summary>
    private static IdxImageSource OpenIdx(string directory, string split)
    {
        var key = (Path.GetFullPath(directory), split);
        lock (SourceGate)
        {
            if (Sources.TryGetValue(key, out var weak) && weak.TryGetTarget(out var shared))
            {
                return shared;
            }

            var loaded = IdxImageSource.LoadSplit(directory, split);
            Sources[key] = new WeakReference<IdxImageSource>(loaded);
            return loaded;
        }
    }

    /// <summary>
    /// The sample indices of every agent of the federation these options describe (each capped at
    /// <see cref="ClientDataOptions.MaxExamples"/>): what <see cref="SelectIndices"/> gives agent i, for all i at once.
    /// </summary>
    public static int[][] SelectAllIndices(ILabelledSource source, ClientDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return Split(source, options).ClientIndices.Select(indices => Cap(indices, options.MaxExamples)).ToArray();
    }

    private static Partition Split(ILabelledSource source, ClientDataOptions options) =>
        Partitioners.Parse(options.Partition).Split(source.Labels, source.NumClasses, options.Clients, (ulong)options.Seed);

    private static int[] Cap(int[] indices, int maxExamples) =>
        maxExamples > 0 && indices.Length > maxExamples ? indices[..maxExamples] : indices;

    /// <summary>The sample indices of this agent's partition, capped at <see cref="ClientDataOptions.MaxExamples"/>.</summary>
    /// <exception cref="InvalidOperationException">The partition is empty.</exception>
    public static int[] SelectIndices(ILabelledSource source, ClientDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var indices = Cap(Split(source, options).ClientIndices[options.Index], options.MaxExamples);
        if (indices.Length == 0)
        {
            throw new InvalidOperationException(
                $"Partition {options.Index} of {options.Clients} ('{options.Partition}', seed {options.Seed}) of {source.Name} holds no examples; choose another partition spec or fewer clients.");
        }

        return indices;
    }

    /// <summary>
    /// Splits <paramref name="indices"/> (a partition, by source index) into a training part and a local test part
    /// with the same label distribution: from each class's n examples, round(<paramref name="fraction"/> · n) go to the
    /// test part (at most n − 1, so training keeps every class it had), chosen by a shuffle seeded with
    /// <paramref name="seed"/>. Both parts keep the partition's order.
    /// </summary>
    public static (int[] Train, int[] Test) SplitLocalTest(int[] indices, ReadOnlySpan<int> labels, double fraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (fraction is not (>= 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The local test fraction must be in [0, 1).");
        }

        var byClass = new SortedDictionary<int, List<int>>();
        for (var i = 0; i < indices.Length; i++)
        {
            var label = labels[indices[i]];
            if (!byClass.TryGetValue(label, out var positions))
            {
                byClass[label] = positions = [];
            }

            positions.Add(i);
        }

        var random = new StableRandom(unchecked(seed ^ 0x10CA_7E57UL));
        var test = new bool[indices.Length];
        foreach (var positions in byClass.Values)
        {
            var take = Math.Min((int)Math.Round(fraction * positions.Count, MidpointRounding.AwayFromZero), positions.Count - 1);
            var order = positions.ToArray();
            random.Shuffle(order.AsSpan());
            foreach (var position in order.AsSpan(0, Math.Max(0, take)))
            {
                test[position] = true;
            }
        }

        return (indices.Where((_, i) => !test[i]).ToArray(), indices.Where((_, i) => test[i]).ToArray());
    }

    /// <summary>
    /// Loads, partitions and materialises the local data on <paramref name="device"/>, holding out
    /// <see cref="ClientDataOptions.LocalTestFraction"/> of it as the local test split (<see cref="SplitLocalTest"/>,
    /// seeded by the data seed and the agent's index); the test split is null when the fraction is 0 or no class has
    /// enough examples to give one.
    /// </summary>
    public static (TensorDataset Train, TensorDataset? LocalTest) LoadWithLocalTest(ClientDataOptions options, Device device, IDataSourceProvider? custom = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.LocalTestFraction <= 0)
        {
            return (Load(options, device, custom), null);
        }

        var source = Open(options, custom);
        var (train, test) = SplitLocalTest(SelectIndices(source, options), source.Labels, options.LocalTestFraction, unchecked(((ulong)options.Seed * 0x9E37_79B9_7F4A_7C15UL) + (ulong)options.Index));
        var name = $"{source.Name}[{options.Partition} {options.Index}/{options.Clients}]";
        var trainData = TensorDataset.Materialize(new IndexedSource(source, train, name), options.GetNormalization(), device, source.NumClasses);
        if (test.Length == 0)
        {
            return (trainData, null);
        }

        try
        {
            return (trainData, TensorDataset.Materialize(new IndexedSource(source, test, name + " local test"), options.GetNormalization(), device, source.NumClasses));
        }
        catch
        {
            trainData.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads, partitions and materialises the local data on <paramref name="device"/>; the <c>custom</c> source comes
    /// from <paramref name="custom"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The source is <c>custom</c> and no provider was given.</exception>
    public static TensorDataset Load(ClientDataOptions options, Device device, IDataSourceProvider? custom = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var source = Open(options, custom);
        var indices = SelectIndices(source, options);
        var local = new IndexedSource(source, indices, $"{source.Name}[{options.Partition} {options.Index}/{options.Clients}]");
        return TensorDataset.Materialize(local, options.GetNormalization(), device, source.NumClasses);
    }
}

/// <summary>A view of some samples of another source, so that only the agent's share becomes tensors.</summary>
internal sealed class IndexedSource : ILabelledSource
{
    private readonly ILabelledSource _source;
    private readonly int[] _indices;
    private readonly int[] _labels;

    public IndexedSource(ILabelledSource source, int[] indices, string name)
    {
        _source = source;
        _indices = indices;
        var all = source.Labels;
        _labels = new int[indices.Length];
        for (var i = 0; i < indices.Length; i++)
        {
            _labels[i] = all[indices[i]];
        }

        Name = name;
    }

    public string Name { get; }

    public int Count => _indices.Length;

    public int NumClasses => _source.NumClasses;

    public IReadOnlyList<int> SampleShape => _source.SampleShape;

    public ReadOnlySpan<int> Labels => _labels;

    public void CopyFeatures(int index, Span<float> destination) => _source.CopyFeatures(_indices[index], destination);
}
