using Federated.Learning.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>The three scenarios of van de Ven &amp; Tolias (2019) for a split data set.</summary>
public enum IncrementalScenario
{
    /// <summary>Task identity given: one head per experience (<see cref="TaskHeadMask"/>), labels as in the data.</summary>
    Task,

    /// <summary>Same output units for every experience: the label is the class's position within its experience.</summary>
    Domain,

    /// <summary>One growing classification problem over all classes; no task identity.</summary>
    Class,
}

/// <summary>One experience's training data and the validation split carved from it; the caller disposes it.</summary>
public sealed class ExperienceData(int index, TensorDataset train, TensorDataset validation) : IDisposable
{
    /// <summary>The experience's index.</summary>
    public int Index { get; } = index;

    /// <summary>Training examples (validation examples excluded).</summary>
    public TensorDataset Train { get; } = train;

    /// <summary>Held-out training examples, for hyper-parameter choice (never the test set).</summary>
    public TensorDataset Validation { get; } = validation;

    /// <inheritdoc />
    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
    }
}

/// <summary>A stream of experiences: training data on demand, test data held by the stream.</summary>
public interface IExperienceSequence : IDisposable
{
    /// <summary>A short name, e.g. <c>split-class</c>.</summary>
    string Name { get; }

    /// <summary>Number of experiences.</summary>
    int Count { get; }

    /// <summary>Output units the model needs.</summary>
    int NumClasses { get; }

    /// <summary>The task of every output unit when the stream is task-incremental (wrap the model in a <see cref="TaskHeadMask"/>); null otherwise.</summary>
    IReadOnlyList<int>? ClassToTask { get; }

    /// <summary>Builds experience <paramref name="index"/>'s training and validation data (the caller disposes them).</summary>
    ExperienceData Open(int index);

    /// <summary>Experience <paramref name="index"/>'s test data (owned by the stream).</summary>
    TensorDataset Test(int index);
}

/// <summary>Shared helpers of the streams.</summary>
public static class ExperienceSequences
{
    /// <summary>Loads Fashion-MNIST's train and test splits from <paramref name="directory"/>, normalised, on <paramref name="device"/>.</summary>
    public static (TensorDataset Train, TensorDataset Test) LoadFashionMnist(string directory, Device device)
    {
        var train = TensorDataset.Materialize(IdxImageSource.LoadSplit(directory, "train"), Normalization.FashionMnist, device);
        try
        {
            return (train, TensorDataset.Materialize(IdxImageSource.LoadSplit(directory, "test"), Normalization.FashionMnist, device));
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>Splits <paramref name="indices"/> (shuffled with <paramref name="seed"/>) into validation (the first ⌊fraction·n⌉) and training indices.</summary>
    public static (int[] Train, int[] Validation) CarveValidation(IReadOnlyList<int> indices, double fraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (fraction is < 0 or >= 1 || double.IsNaN(fraction))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The validation fraction must be in [0, 1).");
        }

        var order = indices.ToArray();
        new Random(seed).Shuffle(order);
        var validation = (int)Math.Round(fraction * order.Length);
        return (order[validation..], order[..validation]);
    }

    /// <summary>The samples of <paramref name="data"/> at <paramref name="indices"/> with labels mapped by <paramref name="label"/>.</summary>
    public static TensorDataset Select(TensorDataset data, int[] indices, Func<int, int> label, int numClasses, string name)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentNullException.ThrowIfNull(label);
        using var scope = torch.NewDisposeScope();
        var index = torch.tensor(indices.Select(i => (long)i).ToArray()).to(data.Device);
        var features = data.Features.index_select(0, index).MoveToOuterDisposeScope();
        var labels = torch.tensor(indices.Select(i => (long)label(data.Labels[i])).ToArray()).to(data.Device).MoveToOuterDisposeScope();
        return TensorDataset.FromTensors(name, features, labels, numClasses);
    }
}

/// <summary>
/// Split Fashion-MNIST (or any 10-class set): experience k holds classes 2k and 2k+1, so five experiences of two
/// classes. Task-incremental keeps labels 0–9 and one two-unit head per experience; domain-incremental relabels to
/// 0/1 (the class's position in its pair) with a two-unit output; class-incremental keeps labels 0–9 with one
/// ten-unit output and no task identity. A validation fraction of every experience's training data is held out.
/// </summary>
public sealed class SplitExperiences : IExperienceSequence
{
    private readonly TensorDataset _train;
    private readonly TensorDataset _test;
    private readonly int[][] _classes;
    private readonly TensorDataset?[] _tests;
    private readonly double _validationFraction;
    private readonly int _seed;

    /// <summary>Splits <paramref name="train"/> and <paramref name="test"/> (not owned) into experiences of <paramref name="classesPerExperience"/> classes.</summary>
    public SplitExperiences(TensorDataset train, TensorDataset test, IncrementalScenario scenario, int classesPerExperience = 2, double validationFraction = 0.1, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentOutOfRangeException.ThrowIfLessThan(classesPerExperience, 1);
        if (train.NumClasses % classesPerExperience != 0 || train.NumClasses / classesPerExperience < 2)
        {
            throw new ArgumentException($"{train.NumClasses} classes do not split into at least two experiences of {classesPerExperience}.", nameof(classesPerExperience));
        }

        _train = train;
        _test = test;
        Scenario = scenario;
        _validationFraction = validationFraction;
        _seed = seed;
        Count = train.NumClasses / classesPerExperience;
        _classes = Enumerable.Range(0, Count).Select(k => Enumerable.Range(k * classesPerExperience, classesPerExperience).ToArray()).ToArray();
        _tests = new TensorDataset?[Count];
        NumClasses = scenario == IncrementalScenario.Domain ? classesPerExperience : train.NumClasses;
        ClassToTask = scenario == IncrementalScenario.Task ? Enumerable.Range(0, train.NumClasses).Select(c => c / classesPerExperience).ToArray() : null;
        Name = $"split-{scenario.ToString().ToLowerInvariant()}";
    }

    /// <summary>The scenario.</summary>
    public IncrementalScenario Scenario { get; }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int Count { get; }

    /// <inheritdoc />
    public int NumClasses { get; }

    /// <inheritdoc />
    public IReadOnlyList<int>? ClassToTask { get; }

    /// <summary>The original classes of experience <paramref name="index"/>.</summary>
    public IReadOnlyList<int> Classes(int index) => _classes[index];

    /// <inheritdoc />
    public ExperienceData Open(int index)
    {
        var (train, validation) = ExperienceSequences.CarveValidation(IndicesOf(_train, index), _validationFraction, _seed * 1_000 + index);
        Array.Sort(train);
        var trainSet = ExperienceSequences.Select(_train, train, Label, NumClasses, $"{Name}/{index}/train");
        return new ExperienceData(index, trainSet, ExperienceSequences.Select(_train, validation, Label, NumClasses, $"{Name}/{index}/validation"));
    }

    /// <inheritdoc />
    public TensorDataset Test(int index) =>
        _tests[index] ??= ExperienceSequences.Select(_test, IndicesOf(_test, index), Label, NumClasses, $"{Name}/{index}/test");

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var test in _tests)
        {
            test?.Dispose();
        }
    }

    private int Label(int original) => Scenario == IncrementalScenario.Domain ? original % _classes[0].Length : original;

    private int[] IndicesOf(TensorDataset data, int index)
    {
        var classes = _classes[index];
        var labels = data.Labels;
        var result = new List<int>();
        for (var i = 0; i < labels.Length; i++)
        {
            if (Array.IndexOf(classes, labels[i]) >= 0)
            {
                result.Add(i);
            }
        }

        return [.. result];
    }
}

/// <summary>
/// Permuted MNIST-style stream: every experience is the whole data set with its pixels shuffled by a fixed
/// permutation drawn from the seed (experience 0 is the identity), same labels and output units (domain-incremental).
/// Training data is built on demand — ten permuted copies of 60,000 images would take 1.9 GB.
/// </summary>
public sealed class PermutedExperiences : IExperienceSequence
{
    private readonly TensorDataset _train;
    private readonly TensorDataset _test;
    private readonly long[][] _permutations;
    private readonly TensorDataset?[] _tests;
    private readonly int[] _trainIndices;
    private readonly int[] _validationIndices;

    /// <summary>Builds <paramref name="experiences"/> permutations of <paramref name="train"/> and <paramref name="test"/> (not owned).</summary>
    public PermutedExperiences(TensorDataset train, TensorDataset test, int experiences = 10, double validationFraction = 0.1, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentOutOfRangeException.ThrowIfLessThan(experiences, 1);
        _train = train;
        _test = test;
        Count = experiences;
        NumClasses = train.NumClasses;
        var pixels = (int)train.SampleShape.Aggregate(1L, (a, b) => a * b);
        _permutations = new long[experiences][];
        for (var k = 0; k < experiences; k++)
        {
            var permutation = Enumerable.Range(0, pixels).Select(p => (long)p).ToArray();
            if (k > 0)
            {
                new Random(seed * 1_000 + k).Shuffle(permutation);
            }

            _permutations[k] = permutation;
        }

        (_trainIndices, _validationIndices) = ExperienceSequences.CarveValidation(Enumerable.Range(0, train.Count).ToArray(), validationFraction, seed);
        Array.Sort(_trainIndices);
        _tests = new TensorDataset?[experiences];
    }

    /// <inheritdoc />
    public string Name => "permuted";

    /// <inheritdoc />
    public int Count { get; }

    /// <inheritdoc />
    public int NumClasses { get; }

    /// <inheritdoc />
    public IReadOnlyList<int>? ClassToTask => null;

    /// <summary>Experience <paramref name="index"/>'s pixel permutation.</summary>
    public IReadOnlyList<long> Permutation(int index) => _permutations[index];

    /// <inheritdoc />
    public ExperienceData Open(int index)
    {
        var train = Permute(_train, _trainIndices, index, "train");
        return new ExperienceData(index, train, Permute(_train, _validationIndices, index, "validation"));
    }

    /// <inheritdoc />
    public TensorDataset Test(int index) => _tests[index] ??= Permute(_test, null, index, "test");

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var test in _tests)
        {
            test?.Dispose();
        }
    }

    private TensorDataset Permute(TensorDataset data, int[]? indices, int index, string part)
    {
        using var scope = torch.NewDisposeScope();
        var features = data.Features;
        var labels = data.LabelTensor;
        if (indices is not null)
        {
            var rows = torch.tensor(indices.Select(i => (long)i).ToArray()).to(data.Device);
            features = features.index_select(0, rows);
            labels = labels.index_select(0, rows);
        }
        else
        {
            labels = labels.clone();
        }

        var permutation = torch.tensor(_permutations[index]).to(data.Device);
        var permuted = features.flatten(1).index_select(1, permutation).reshape(features.shape).MoveToOuterDisposeScope();
        return TensorDataset.FromTensors($"permuted/{index}/{part}", permuted, labels.MoveToOuterDisposeScope(), NumClasses);
    }
}

/// <summary>
/// Gradual drift between the experiences of another stream: <c>steps</c> experiences, where step s sits at position
/// u = s·(K−1)/(steps−1) along the K base experiences and draws each training (and test) example from base experience
/// ⌊u⌋ with probability 1 − (u − ⌊u⌋) and from the next one otherwise — the probability of the new concept rises
/// linearly from 0 to 1 between consecutive base experiences. Each step has as many examples as its base experience.
/// </summary>
public sealed class GradualDrift : IExperienceSequence
{
    private readonly IExperienceSequence _base;
    private readonly TensorDataset?[] _tests;
    private readonly int _seed;

    /// <summary>Drifts through <paramref name="baseStream"/> (not owned) in <paramref name="steps"/> experiences.</summary>
    public GradualDrift(IExperienceSequence baseStream, int steps, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(baseStream);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 2);
        _base = baseStream;
        Count = steps;
        _seed = seed;
        _tests = new TensorDataset?[steps];
    }

    /// <inheritdoc />
    public string Name => $"drift-{_base.Name}";

    /// <inheritdoc />
    public int Count { get; }

    /// <inheritdoc />
    public int NumClasses => _base.NumClasses;

    /// <inheritdoc />
    public IReadOnlyList<int>? ClassToTask => _base.ClassToTask;

    /// <summary>Step <paramref name="step"/>'s base experiences and the probability of drawing from the second.</summary>
    public (int From, int To, double Mix) Position(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(step, Count);
        var u = (double)step * (_base.Count - 1) / (Count - 1);
        var from = Math.Min((int)Math.Floor(u), _base.Count - 1);
        var to = Math.Min(from + 1, _base.Count - 1);
        return (from, to, u - from);
    }

    /// <inheritdoc />
    public ExperienceData Open(int index)
    {
        var (from, to, mix) = Position(index);
        using var a = _base.Open(from);
        using var b = _base.Open(to);
        var train = Mix(a.Train, b.Train, mix, _seed * 1_000 + index, $"{Name}/{index}/train");
        return new ExperienceData(index, train, Mix(a.Validation, b.Validation, mix, _seed * 1_000 + index + 500, $"{Name}/{index}/validation"));
    }

    /// <inheritdoc />
    public TensorDataset Test(int index)
    {
        if (_tests[index] is { } cached)
        {
            return cached;
        }

        var (from, to, mix) = Position(index);
        return _tests[index] = Mix(_base.Test(from), _base.Test(to), mix, _seed * 1_000 + index + 900, $"{Name}/{index}/test");
    }

    /// <summary>
    /// |a| examples: each drawn from <paramref name="b"/> with probability <paramref name="mix"/> and from
    /// <paramref name="a"/> otherwise, without replacement within each source.
    /// </summary>
    public static TensorDataset Mix(TensorDataset a, TensorDataset b, double mix, int seed, string name)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var random = new Random(seed);
        var fromB = 0;
        for (var i = 0; i < a.Count; i++)
        {
            fromB += random.NextDouble() < mix ? 1 : 0;
        }

        fromB = Math.Min(fromB, b.Count);
        var orderA = Enumerable.Range(0, a.Count).ToArray();
        var orderB = Enumerable.Range(0, b.Count).ToArray();
        random.Shuffle(orderA);
        random.Shuffle(orderB);
        using var partA = ExperienceSequences.Select(a, orderA[..(a.Count - fromB)], static l => l, a.NumClasses, name);
        using var partB = ExperienceSequences.Select(b, orderB[..fromB], static l => l, b.NumClasses, name);
        using var joined = TensorDataset.Concatenate([partA, partB], name);
        var shuffle = Enumerable.Range(0, joined.Count).ToArray();
        random.Shuffle(shuffle);
        return joined.Subset(shuffle, name);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var test in _tests)
        {
            test?.Dispose();
        }
    }
}
