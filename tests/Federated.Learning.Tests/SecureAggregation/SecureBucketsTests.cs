using Federated.Learning.Privacy;
using Federated.Learning.Robustness;
using Federated.Learning.SecureAggregation;

namespace Federated.Learning.Tests.SecureAggregation;

public sealed class SecureBucketsTests
{
    [Theory]
    [InlineData(40, 10, 4)]
    [InlineData(43, 10, 4)]
    [InlineData(19, 10, 1)]
    [InlineData(25, 0, 1)]
    public void Draw_PartitionsEveryAgentOnce_BucketsOfBOrMore(int agents, int size, int expectedBuckets)
    {
        var buckets = SecureBuckets.Draw(agents, size, ChaCha20Random.FromSeed("draw"));

        Assert.Equal(expectedBuckets, buckets.Length);
        Assert.Equal(Enumerable.Range(0, agents), buckets.SelectMany(b => b).Order());
        Assert.All(buckets, b => Assert.InRange(b.Length, Math.Min(agents, size), expectedBuckets == 1 ? agents : size + 1));
    }

    [Fact]
    public void Draw_OtherStream_OtherPartition()
    {
        var random = ChaCha20Random.FromSeed("draw");

        var first = SecureBuckets.Draw(40, 10, random.WithStream(1));
        var second = SecureBuckets.Draw(40, 10, random.WithStream(2));

        Assert.NotEqual(first.Select(b => string.Join(',', b)), second.Select(b => string.Join(',', b)));
    }

    [Fact]
    public void Run_Buckets_EveryBucketSumUnmasksExactly()
    {
        var scenario = new SecureAggregationScenario
        {
            Agents = 40,
            Length = 500,
            Options = new SecureAggregationOptions { ClipRange = 0.5 },
            Dropouts = new Dictionary<SecureAggregationStage, double> { [SecureAggregationStage.MaskedInput] = 0.1 },
        };

        var run = BucketedSecureAggregation.Run(scenario, 10, RobustAggregators.Parse("median"), u => Honest(u, 500));

        Assert.Equal(4, run.Buckets.Count);
        Assert.All(run.Buckets, b =>
        {
            Assert.Null(b.FailureReason);
            Assert.Equal(b.Run!.PlaintextRingSum, b.Run.Result.RingSum);
            Assert.Equal(b.Agents.Length - 1, b.Run.Result.Survivors.Length);
        });
        Assert.NotNull(run.Aggregate);
    }

    [Fact]
    public void Run_OnePoisonedAgent_MedianAcrossBucketsMovesFarLessThanThePlainSum()
    {
        const int Length = 200;
        const int Poisoned = 7;
        var scenario = new SecureAggregationScenario { Agents = 40, Length = Length, Options = new SecureAggregationOptions { ClipRange = 100 } };
        float[] Inputs(int u) => u == Poisoned ? [.. Enumerable.Repeat(100f, Length)] : Honest(u, Length);
        var honestMean = new double[Length];
        for (var u = 0; u < 40; u++)
        {
            if (u != Poisoned)
            {
                var x = Honest(u, Length);
                for (var i = 0; i < Length; i++)
                {
                    honestMean[i] += x[i] / 39.0;
                }
            }
        }

        var plain = BucketedSecureAggregation.Run(scenario, 0, null, Inputs);
        var bucketed = BucketedSecureAggregation.Run(scenario, 10, RobustAggregators.Parse("median"), Inputs);

        var plainShift = plain.Aggregate!.Select((v, i) => Math.Abs(v - honestMean[i])).Max();
        var bucketShift = bucketed.Aggregate!.Select((v, i) => Math.Abs(v - honestMean[i])).Max();
        Assert.InRange(plainShift, 2.0, 3.0); // 100/40 = 2.5
        Assert.InRange(bucketShift, 0, 0.1);
        Assert.True(bucketShift < plainShift / 20);
    }

    [Fact]
    public void Run_ABucketFails_DroppedAndTheOthersCombined()
    {
        // Agent 0 forges its signature: its bucket keeps 9 survivors, fewer than the 10 it must unmask, and fails.
        var scenario = new SecureAggregationScenario
        {
            Agents = 30,
            Length = 50,
            Options = new SecureAggregationOptions { Degree = 4, Threshold = 3, MinSurvivors = 10 },
            BadSignatures = new HashSet<int> { 0 },
        };

        var run = BucketedSecureAggregation.Run(scenario, 10, RobustAggregators.Parse("median"), u => Honest(u, 50));

        Assert.Single(run.Buckets, b => b.FailureReason is not null);
        Assert.Contains(0, run.Buckets.Single(b => b.FailureReason is not null).Agents);
        Assert.Equal(2, run.Buckets.Count(b => b.FailureReason is null));
        Assert.NotNull(run.Aggregate);
    }

    [Fact]
    public void Combine_SingleBucket_IsItsMean()
    {
        var mean = SecureBuckets.Combine([([4f, 8f], 4.0)], RobustAggregators.Parse("median"));

        Assert.Equal([1f, 2f], mean);
    }

    private static float[] Honest(int u, int length)
    {
        var random = ChaCha20Random.FromSeed($"honest-{u}");
        return [.. Enumerable.Range(0, length).Select(_ => (float)(0.1 + (0.01 * random.NextGaussian())))];
    }
}
