using Federated.Learning.Robustness;

namespace Federated.Learning.Tests.Robustness;

public sealed class RobustAggregatorsTests
{
    [Theory]
    [InlineData("mean", "mean")]
    [InlineData("MEDIAN", "median")]
    [InlineData("trimmed_mean", "trimmed_mean:beta=0.1")]
    [InlineData("trimmed_mean: beta = 0.2", "trimmed_mean:beta=0.2")]
    [InlineData("krum:f=2", "krum:f=2")]
    [InlineData("multikrum:f=2,m=5", "multikrum:f=2,m=5")]
    [InlineData("multikrum:f=2", "multikrum:f=2")]
    [InlineData("bulyan:f=1", "bulyan:f=1")]
    [InlineData("rfa:iterations=5", "geometric_median:nu=1E-06,iterations=5,tolerance=1E-06")]
    [InlineData("cclip:tau=1.5,start=median", "centered_clipping:tau=1.5,iterations=5,start=median")]
    [InlineData("norm_bound", "norm_bound:bound=median")]
    [InlineData("norm_bound:bound=2 > median", "norm_bound:bound=2 > median")]
    [InlineData("bucketing:s=3,seed=7 > cclip:tau=1", "bucketing:s=3,seed=7 > centered_clipping:tau=1,iterations=5,start=zero")]
    [InlineData("bucketing > norm_bound > trimmed_mean:beta=0.3", "bucketing:s=2,seed=0 > norm_bound:bound=median > trimmed_mean:beta=0.3")]
    public void Parse_GivesTheCanonicalName_WhichParsesBack(string specification, string canonical)
    {
        var rule = RobustAggregators.Parse(specification);
        Assert.Equal(canonical, rule.Name);
        Assert.Equal(canonical, RobustAggregators.Parse(rule.Name).Name);
    }

    [Fact]
    public void Parse_BuildsTheConfiguredRule()
    {
        var bucketing = Assert.IsType<Bucketing>(RobustAggregators.Parse("bucketing:s=4,seed=3 > multikrum:f=2,m=5"));
        Assert.Equal((4, 3UL), (bucketing.BucketSize, bucketing.Seed));
        var krum = Assert.IsType<MultiKrum>(bucketing.Inner);
        Assert.Equal((2, 5), (krum.F, krum.M));
        Assert.Equal(0.25, Assert.IsType<TrimmedMean>(RobustAggregators.Parse("trimmed_mean:beta=0.25")).Beta);
    }

    [Theory]
    [InlineData("average", "unknown rule 'average'")]
    [InlineData("median:beta=0.1", "has no option 'beta'")]
    [InlineData("trimmed_mean:beta=0.5", "[0, 0.5)")]
    [InlineData("trimmed_mean:beta=abc", "must be a number")]
    [InlineData("krum", "needs option 'f'")]
    [InlineData("krum:f=-1", "non-negative integer")]
    [InlineData("multikrum:f=1,m=0", "m (the number of updates averaged)")]
    [InlineData("median > mean", "not a wrapper")]
    [InlineData("bucketing:s=2", "needs an inner rule")]
    [InlineData("bucketing:s=0 > median", "bucket size")]
    [InlineData("median >", "empty stage")]
    [InlineData("trimmed_mean:beta", "key=value")]
    [InlineData("cclip:start=middle", "zero or median")]
    public void Parse_Mistakes_AreExplained(string specification, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => RobustAggregators.Parse(specification));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
