using Federated.Learning.Continual;
using Federated.Learning.Data;
using TorchSharp;

namespace Federated.Learning.Tests.Continual;

public sealed class ExperiencesTests
{
    private static TensorDataset Ten(int count, int seed) =>
        TensorDataset.Materialize(SyntheticImages.Create(count, [1, 3, 3], 10, seed), Normalization.None, torch.CPU);

    [Theory]
    [InlineData(IncrementalScenario.Task, 10)]
    [InlineData(IncrementalScenario.Domain, 2)]
    [InlineData(IncrementalScenario.Class, 10)]
    public void Split_FiveExperiencesOfTwoClasses_WithTheScenariosLabels(IncrementalScenario scenario, int outputs)
    {
        using var train = Ten(400, 1);
        using var test = Ten(100, 2);
        using var split = new SplitExperiences(train, test, scenario, 2, validationFraction: 0.25, seed: 3);

        Assert.Equal(5, split.Count);
        Assert.Equal(outputs, split.NumClasses);
        Assert.Equal(scenario == IncrementalScenario.Task, split.ClassToTask is not null);
        for (var k = 0; k < 5; k++)
        {
            using var experience = split.Open(k);
            int[] expected = scenario == IncrementalScenario.Domain ? [0, 1] : [2 * k, 2 * k + 1];
            Assert.Equal(expected, experience.Train.Labels.ToArray().Distinct().Order());
            Assert.Equal(expected, split.Test(k).Labels.ToArray().Distinct().Order());
            Assert.Equal(80, experience.Train.Count + experience.Validation.Count);
            Assert.Equal(20, experience.Validation.Count);
        }
    }

    [Fact]
    public void Split_ValidationIsDisjointFromTraining()
    {
        using var train = Ten(200, 1);
        using var test = Ten(50, 2);
        using var split = new SplitExperiences(train, test, IncrementalScenario.Class, 2, 0.5, 3);

        using var experience = split.Open(0);

        // Every synthetic sample is distinct, so a shared row would mean a shared sample.
        var trainRows = experience.Train.Features.flatten(1).sum(1).data<float>().ToHashSet();
        Assert.DoesNotContain(experience.Validation.Features.flatten(1).sum(1).data<float>().ToArray(), trainRows.Contains);
    }

    [Fact]
    public void Permuted_FirstIsIdentity_OthersArePermutationsOfTheSamePixels()
    {
        using var train = Ten(50, 1);
        using var test = Ten(20, 2);
        using var permuted = new PermutedExperiences(train, test, experiences: 3, validationFraction: 0.2, seed: 7);

        Assert.Equal(Enumerable.Range(0, 9).Select(i => (long)i), permuted.Permutation(0));
        Assert.NotEqual(permuted.Permutation(1), permuted.Permutation(2));
        Assert.True(ContinualTestData.Same(permuted.Test(0).Features, test.Features));
        var original = test.Features.flatten(1);
        var shuffled = permuted.Test(2).Features.flatten(1);
        Assert.True(ContinualTestData.Same(shuffled.sort(1).Values, original.sort(1).Values));
        Assert.False(ContinualTestData.Same(shuffled, original));
        Assert.Equal(test.Labels.ToArray(), permuted.Test(2).Labels.ToArray());
        using var experience = permuted.Open(1);
        Assert.Equal(40, experience.Train.Count);
        Assert.Equal(10, experience.Validation.Count);
    }

    [Fact]
    public void GradualDrift_MixingProbabilityRisesBetweenConsecutiveExperiences()
    {
        using var train = Ten(2000, 1);
        using var test = Ten(500, 2);
        using var split = new SplitExperiences(train, test, IncrementalScenario.Class, 5, 0.1, 3);
        using var drift = new GradualDrift(split, steps: 5, seed: 1);

        var shares = new List<double>();
        for (var s = 0; s < 5; s++)
        {
            using var experience = drift.Open(s);
            shares.Add(experience.Train.Labels.ToArray().Count(l => l >= 5) / (double)experience.Train.Count);
        }

        Assert.Equal((0, 1, 0.5), drift.Position(2));
        Assert.Equal(0.0, shares[0]);
        Assert.Equal(1.0, shares[4]);
        Assert.InRange(shares[1], 0.15, 0.35);
        Assert.InRange(shares[2], 0.40, 0.60);
        Assert.InRange(shares[3], 0.65, 0.85);
    }
}
