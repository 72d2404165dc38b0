using Federated.Learning.Continual;
using TorchSharp;

namespace Federated.Learning.Tests.Continual;

public sealed class ReplayBufferTests
{
    private static int[] Labels(int count, params int[] classes) => Enumerable.Range(0, count).Select(i => classes[i % classes.Length]).ToArray();

    [Theory]
    [InlineData(ReplayPolicy.Reservoir)]
    [InlineData(ReplayPolicy.ClassBalanced)]
    [InlineData(ReplayPolicy.ExperienceBalanced)]
    public void Add_ManyExperiences_NeverExceedsTheBudget(ReplayPolicy policy)
    {
        using var buffer = ReplayBuffer.Create(policy, budget: 50, seed: 1);
        for (var e = 0; e < 5; e++)
        {
            using var data = ContinualTestData.Labelled(Labels(200, 2 * e, 2 * e + 1), 10);

            buffer.Add(data, e);

            Assert.Equal(50, buffer.Count);
            Assert.Equal(50, buffer.Features!.shape[0]);
        }
    }

    [Fact]
    public void ClassBalanced_AfterFiveExperiencesOfTwoClasses_HoldsAnEqualShareOfEveryClass()
    {
        using var buffer = new ClassBalancedBuffer(budget: 100, seed: 2);
        for (var e = 0; e < 5; e++)
        {
            using var data = ContinualTestData.Labelled(Labels(300, 2 * e, 2 * e + 1), 10);
            buffer.Add(data, e);
        }

        var perClass = buffer.Labels.GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Enumerable.Range(0, 10), perClass.Keys.Order());
        Assert.All(perClass.Values, n => Assert.Equal(10, n));
    }

    [Fact]
    public void ClassBalanced_RemainderGoesToTheLowestClasses()
    {
        using var buffer = new ClassBalancedBuffer(budget: 10, seed: 2);
        using var data = ContinualTestData.Labelled(Labels(60, 0, 1, 2), 3);

        buffer.Add(data, 0);

        Assert.Equal(new[] { 4, 3, 3 }, buffer.Labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => g.Count()));
    }

    [Fact]
    public void ExperienceBalanced_HoldsAnEqualShareOfEveryExperience()
    {
        using var buffer = new ExperienceBalancedBuffer(budget: 90, seed: 3);
        for (var e = 0; e < 3; e++)
        {
            using var data = ContinualTestData.Labelled(Labels(100 * (e + 1), 0, 1), 2);
            buffer.Add(data, e);
        }

        Assert.Equal(new[] { 30, 30, 30 }, buffer.Experiences.GroupBy(x => x).OrderBy(g => g.Key).Select(g => g.Count()));
    }

    [Fact]
    public void Reservoir_KeepsRoughlyUniformShareOfEverythingSeen()
    {
        // After 1,000 + 3,000 examples, a uniform sample of 400 holds about 100 of the first experience.
        using var buffer = new ReservoirBuffer(budget: 400, seed: 4);
        using var first = ContinualTestData.Labelled(Labels(1000, 0), 2);
        using var second = ContinualTestData.Labelled(Labels(3000, 1), 2);

        buffer.Add(first, 0);
        buffer.Add(second, 1);

        var fromFirst = buffer.Experiences.Count(e => e == 0);
        Assert.InRange(fromFirst, 70, 130);
        Assert.Equal(4000, buffer.Seen[0]);
    }

    [Fact]
    public void Add_KeepsFeaturesWithTheirLabels()
    {
        using var buffer = new ClassBalancedBuffer(budget: 8, seed: 5);
        var labels = Labels(40, 0, 1, 2, 3);
        using var data = ContinualTestData.Labelled(labels, 4);

        buffer.Add(data, 0);

        // Sample i's features are all i, so each kept row names the sample it came from.
        var rows = buffer.Features!.flatten(1).select(1, 0).data<float>().ToArray();
        for (var r = 0; r < rows.Length; r++)
        {
            Assert.Equal(labels[(int)rows[r]], buffer.Labels[r]);
        }
    }

    [Fact]
    public void Sample_DrawsOnlyBufferedExamples()
    {
        using var buffer = new ReservoirBuffer(budget: 5, seed: 6);
        using var data = ContinualTestData.Labelled(Labels(50, 0, 1), 2);
        buffer.Add(data, 0);
        using var generator = new torch.Generator(1);

        using var scope = torch.NewDisposeScope();
        var (inputs, targets) = buffer.Sample(64, generator);

        var kept = buffer.Features!.flatten(1).select(1, 0).data<float>().ToHashSet();
        Assert.Equal(64, targets.shape[0]);
        Assert.All(inputs.flatten(1).select(1, 0).data<float>().ToArray(), v => Assert.Contains(v, kept));
    }
}
