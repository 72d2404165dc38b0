using Federated.Learning.Data;

namespace Federated.Learning.Continual;

/// <summary>
/// Builds the named streams a federated agent (or the simulator's evaluator) moves through, so that both sides cut
/// the same experiences from the same seed: <c>split-task</c>, <c>split-domain</c>, <c>split-class</c> (five
/// experiences of two classes), <c>permuted</c> (<c>experiences</c> pixel permutations, the first the identity) and
/// <c>drift</c> (<c>experiences</c> steps of gradual drift from the identity to one permutation).
/// </summary>
public static class ContinualStreams
{
    /// <summary>The stream names <see cref="Create"/> accepts (besides <c>none</c>).</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["split-task", "split-domain", "split-class", "permuted", "drift"];

    /// <summary>True when <paramref name="kind"/> is a split stream (its length is fixed by the classes).</summary>
    public static bool IsSplit(string kind) => kind is "split-task" or "split-domain" or "split-class";

    /// <summary>
    /// The stream <paramref name="kind"/> over <paramref name="train"/> and <paramref name="test"/> (neither owned);
    /// <paramref name="experiences"/> counts permuted experiences or drift steps (split streams ignore it).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="kind"/> is not one of <see cref="Kinds"/>.</exception>
    public static IExperienceSequence Create(string kind, TensorDataset train, TensorDataset test, int experiences, int seed, double validationFraction = 0)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        return kind switch
        {
            "split-task" => new SplitExperiences(train, test, IncrementalScenario.Task, 2, validationFraction, seed),
            "split-domain" => new SplitExperiences(train, test, IncrementalScenario.Domain, 2, validationFraction, seed),
            "split-class" => new SplitExperiences(train, test, IncrementalScenario.Class, 2, validationFraction, seed),
            "permuted" => new PermutedExperiences(train, test, experiences, validationFraction, seed),
            "drift" => Owning(new PermutedExperiences(train, test, 2, validationFraction, seed), experiences, seed),
            _ => throw new ArgumentException($"Unknown continual stream '{kind}': use {string.Join(", ", Kinds)}.", nameof(kind)),
        };
    }

    /// <summary>A <see cref="GradualDrift"/> of <paramref name="steps"/> experiences over <paramref name="inner"/> that disposes <paramref name="inner"/> with itself.</summary>
    public static IExperienceSequence Owning(IExperienceSequence inner, int steps, int seed) => new OwningDrift(inner, steps, seed);

    private sealed class OwningDrift(IExperienceSequence inner, int steps, int seed) : IExperienceSequence
    {
        private readonly GradualDrift _drift = new(inner, steps, seed);

        public string Name => _drift.Name;

        public int Count => _drift.Count;

        public int NumClasses => _drift.NumClasses;

        public IReadOnlyList<int>? ClassToTask => _drift.ClassToTask;

        public ExperienceData Open(int index) => _drift.Open(index);

        public TensorDataset Test(int index) => _drift.Test(index);

        public void Dispose()
        {
            _drift.Dispose();
            inner.Dispose();
        }
    }
}

/// <summary>
/// Which experience an agent learns in a round: rounds count from 1; an agent with offset o starts its stream o
/// rounds late (staggered streams), learning experience 0 until then; each experience lasts
/// <c>roundsPerExperience</c> rounds and the last one lasts to the end of the run.
/// </summary>
public static class ExperienceSchedule
{
    /// <summary>The experience (0 … <paramref name="count"/> − 1) learned in <paramref name="round"/>.</summary>
    public static int At(int round, int roundsPerExperience, int offset, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(roundsPerExperience, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var position = (long)round - 1 - offset;
        return position < 0 ? 0 : (int)Math.Min(position / roundsPerExperience, count - 1);
    }
}
