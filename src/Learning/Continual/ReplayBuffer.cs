using Federated.Learning.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>A bounded memory of past examples with their labels and the experiences they came from.</summary>
public interface IReplayBuffer : IDisposable
{
    /// <summary>The policy that chooses what the buffer keeps.</summary>
    ReplayPolicy Policy { get; }

    /// <summary>The most examples the buffer holds.</summary>
    int Budget { get; }

    /// <summary>Examples held now (never more than <see cref="Budget"/>).</summary>
    int Count { get; }

    /// <summary>The examples [Count, …] on the training device (null while empty).</summary>
    Tensor? Features { get; }

    /// <summary>The examples' labels.</summary>
    IReadOnlyList<int> Labels { get; }

    /// <summary>The experience each example came from.</summary>
    IReadOnlyList<int> Experiences { get; }

    /// <summary>Offers every example of <paramref name="data"/>, from experience <paramref name="experience"/>, to the buffer.</summary>
    void Add(TensorDataset data, int experience);

    /// <summary>Draws <paramref name="count"/> examples uniformly with replacement, as tensors in the caller's dispose scope.</summary>
    (Tensor Inputs, Tensor Targets) Sample(int count, Generator generator);
}

/// <summary>
/// The storage every policy shares. A policy only plans which examples survive an <see cref="Add"/> — old ones by
/// slot, new ones by index — and the buffer rebuilds its tensors from that plan with one <c>index_select</c> each.
/// Policies that sample "uniformly from everything seen" keep seen-counters per key (<see cref="Seen"/>), which
/// persist with the buffer; their randomness comes from the seed and the experience, so it needs no saved state.
/// </summary>
public abstract class ReplayBuffer : IReplayBuffer
{
    private Tensor? _features;
    private Tensor? _labelTensor;
    private int[] _labels = [];
    private int[] _experiences = [];

    /// <summary>Creates an empty buffer of <paramref name="budget"/> examples.</summary>
    protected ReplayBuffer(int budget, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget);
        Budget = budget;
        Seed = seed;
    }

    /// <inheritdoc />
    public abstract ReplayPolicy Policy { get; }

    /// <inheritdoc />
    public int Budget { get; }

    /// <summary>Seeds the policy's choices (mixed with the experience index).</summary>
    public long Seed { get; }

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public Tensor? Features => _features;

    /// <inheritdoc />
    public IReadOnlyList<int> Labels => _labels;

    /// <inheritdoc />
    public IReadOnlyList<int> Experiences => _experiences;

    /// <summary>Examples seen so far per key (the whole stream, a class, an experience: the policy decides).</summary>
    public SortedDictionary<int, long> Seen { get; } = [];

    /// <summary>Builds an empty buffer of <paramref name="options"/>' policy and budget.</summary>
    public static ReplayBuffer Create(ReplayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return Create(options.Policy, options.Budget, options.Seed);
    }

    /// <summary>Builds an empty buffer of <paramref name="policy"/>.</summary>
    public static ReplayBuffer Create(ReplayPolicy policy, int budget, long seed) => policy switch
    {
        ReplayPolicy.Reservoir => new ReservoirBuffer(budget, seed),
        ReplayPolicy.ClassBalanced => new ClassBalancedBuffer(budget, seed),
        ReplayPolicy.ExperienceBalanced => new ExperienceBalancedBuffer(budget, seed),
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "Unknown replay policy."),
    };

    /// <inheritdoc />
    public void Add(TensorDataset data, int experience)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(experience);
        if (data.Count == 0)
        {
            return;
        }

        if (_features is not null && !_features.shape.AsSpan(1).SequenceEqual(data.SampleShape))
        {
            throw new ArgumentException($"The buffer holds samples shaped [{string.Join(", ", _features.shape[1..])}], not [{string.Join(", ", data.SampleShape)}].", nameof(data));
        }

        var current = new List<Slot>(Count);
        for (var i = 0; i < Count; i++)
        {
            current.Add(new Slot(false, i, _labels[i], _experiences[i]));
        }

        var random = new Random(unchecked((int)((Seed * 1_000_003) + (experience * 7_919L) + Count)));
        var plan = Plan(current, data.Labels, experience, random);
        if (plan.Count > Budget)
        {
            throw new InvalidOperationException($"The {Policy} policy planned {plan.Count} examples for a budget of {Budget}.");
        }

        using var scope = torch.NewDisposeScope();
        var oldIndex = plan.Where(s => !s.IsNew).Select(s => (long)s.Index).ToArray();
        var newIndex = plan.Where(s => s.IsNew).Select(s => (long)s.Index).ToArray();
        var parts = new List<Tensor>(2);
        if (oldIndex.Length > 0)
        {
            parts.Add(_features!.index_select(0, torch.tensor(oldIndex, device: _features.device)));
        }

        if (newIndex.Length > 0)
        {
            parts.Add(data.Features.index_select(0, torch.tensor(newIndex, device: data.Device)));
        }

        var ordered = plan.Where(s => !s.IsNew).Concat(plan.Where(s => s.IsNew)).ToArray();
        var features = parts.Count == 1 ? parts[0] : torch.cat(parts, 0);
        Replace(features.MoveToOuterDisposeScope(), ordered.Select(s => s.Label).ToArray(), ordered.Select(s => s.Experience).ToArray());
    }

    /// <inheritdoc />
    public (Tensor Inputs, Tensor Targets) Sample(int count, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (_features is null || Count == 0)
        {
            throw new InvalidOperationException("Cannot sample from an empty replay buffer.");
        }

        var index = torch.randint(Count, [count], generator: generator, dtype: ScalarType.Int64).to(_features.device);
        return (_features.index_select(0, index), _labelTensor!.index_select(0, index));
    }

    /// <summary>Replaces the contents (used by <see cref="ContinualState.Load"/>); takes ownership of <paramref name="features"/>.</summary>
    public void Restore(Tensor features, int[] labels, int[] experiences, IReadOnlyDictionary<int, long> seen)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(experiences);
        ArgumentNullException.ThrowIfNull(seen);
        if (features.shape[0] != labels.Length || labels.Length != experiences.Length || labels.Length > Budget)
        {
            throw new ArgumentException($"A buffer of {Budget} cannot hold {features.shape[0]} features, {labels.Length} labels and {experiences.Length} experience ids.");
        }

        Replace(features, labels, experiences);
        Seen.Clear();
        foreach (var (key, value) in seen)
        {
            Seen[key] = value;
        }
    }

    /// <summary>
    /// Plans the buffer after offering new examples with <paramref name="labels"/> from <paramref name="experience"/>:
    /// at most <see cref="Budget"/> slots, each an old slot (<see cref="Slot.IsNew"/> false) or a new example's index.
    /// </summary>
    protected abstract List<Slot> Plan(List<Slot> current, ReadOnlySpan<int> labels, int experience, Random random);

    /// <summary>Adds one to <see cref="Seen"/>[<paramref name="key"/>] and returns the new count.</summary>
    protected long CountSeen(int key) => Seen[key] = Seen.GetValueOrDefault(key) + 1;

    /// <summary>Splits <see cref="Budget"/> as evenly as possible over <paramref name="keys"/> (earlier keys get the remainder).</summary>
    protected Dictionary<int, int> Quotas(IEnumerable<int> keys)
    {
        var sorted = keys.Distinct().Order().ToArray();
        var quotas = new Dictionary<int, int>(sorted.Length);
        for (var k = 0; k < sorted.Length; k++)
        {
            quotas[sorted[k]] = Budget / sorted.Length + (k < Budget % sorted.Length ? 1 : 0);
        }

        return quotas;
    }

    /// <summary>Keeps, per key, a uniform sample of everything seen under that key, within per-key quotas over all keys seen.</summary>
    protected List<Slot> PlanBalanced(List<Slot> current, ReadOnlySpan<int> labels, int experience, Random random, Func<Slot, int> key)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(key);
        var incoming = new Slot[labels.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            incoming[i] = new Slot(true, i, labels[i], experience);
        }

        random.Shuffle(incoming);
        var quotas = Quotas(current.Select(key).Concat(incoming.Select(key)));
        var groups = current.GroupBy(key).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var (k, members) in groups)
        {
            // A shrinking quota evicts at random: what remains is still a uniform sample of what the key has seen.
            if (members.Count > quotas[k])
            {
                var shuffled = members.ToArray();
                random.Shuffle(shuffled);
                groups[k] = shuffled.Take(quotas[k]).ToList();
            }
        }

        foreach (var slot in incoming)
        {
            var k = key(slot);
            var members = groups.TryGetValue(k, out var list) ? list : groups[k] = [];
            var seen = CountSeen(k);
            if (members.Count < quotas[k])
            {
                members.Add(slot);
            }
            else if (random.NextInt64(seen) is var j && j < quotas[k])
            {
                members[(int)j] = slot;
            }
        }

        return groups.OrderBy(g => g.Key).SelectMany(g => g.Value).ToList();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _features?.Dispose();
        _labelTensor?.Dispose();
        GC.SuppressFinalize(this);
    }

    private void Replace(Tensor features, int[] labels, int[] experiences)
    {
        _features?.Dispose();
        _labelTensor?.Dispose();
        _features = features.DetachFromDisposeScope();
        using var hostLabels = torch.tensor(labels.Select(l => (long)l).ToArray());
        _labelTensor = hostLabels.to(features.device).DetachFromDisposeScope();
        _labels = labels;
        _experiences = experiences;
    }

    /// <summary>One planned example: an old slot or a new example's index, with its label and experience.</summary>
    /// <param name="IsNew">True for an example of the data being added.</param>
    /// <param name="Index">The old slot, or the index in the new data.</param>
    /// <param name="Label">Its label.</param>
    /// <param name="Experience">Its experience.</param>
    protected readonly record struct Slot(bool IsNew, int Index, int Label, int Experience);
}

/// <summary>
/// Reservoir sampling (Vitter's algorithm R) over the whole stream: after n examples have been offered, each is in the
/// buffer with probability Budget / n, whatever its class or experience.
/// </summary>
public sealed class ReservoirBuffer(int budget, long seed = 0) : ReplayBuffer(budget, seed)
{
    /// <inheritdoc />
    public override ReplayPolicy Policy => ReplayPolicy.Reservoir;

    /// <inheritdoc />
    protected override List<Slot> Plan(List<Slot> current, ReadOnlySpan<int> labels, int experience, Random random)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(random);
        var kept = new List<Slot>(current);
        var order = Enumerable.Range(0, labels.Length).ToArray();
        random.Shuffle(order);
        foreach (var i in order)
        {
            var seen = CountSeen(0);
            if (kept.Count < Budget)
            {
                kept.Add(new Slot(true, i, labels[i], experience));
            }
            else if (random.NextInt64(seen) is var j && j < Budget)
            {
                kept[(int)j] = new Slot(true, i, labels[i], experience);
            }
        }

        return kept;
    }
}

/// <summary>
/// An equal share of the budget per class seen so far (the remainder to the lowest classes); within a class, a
/// uniform sample of that class's examples. New classes shrink the old classes' shares by random eviction.
/// </summary>
public sealed class ClassBalancedBuffer(int budget, long seed = 0) : ReplayBuffer(budget, seed)
{
    /// <inheritdoc />
    public override ReplayPolicy Policy => ReplayPolicy.ClassBalanced;

    /// <inheritdoc />
    protected override List<Slot> Plan(List<Slot> current, ReadOnlySpan<int> labels, int experience, Random random) =>
        PlanBalanced(current, labels, experience, random, static s => s.Label);
}

/// <summary>An equal share of the budget per experience seen so far; within an experience, a uniform sample of its examples.</summary>
public sealed class ExperienceBalancedBuffer(int budget, long seed = 0) : ReplayBuffer(budget, seed)
{
    /// <inheritdoc />
    public override ReplayPolicy Policy => ReplayPolicy.ExperienceBalanced;

    /// <inheritdoc />
    protected override List<Slot> Plan(List<Slot> current, ReadOnlySpan<int> labels, int experience, Random random) =>
        PlanBalanced(current, labels, experience, random, static s => s.Experience);
}
