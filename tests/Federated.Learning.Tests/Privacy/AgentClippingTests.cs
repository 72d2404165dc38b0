using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class AgentClippingTests
{
    [Fact]
    public void Apply_WithoutTheKey_DoesNothing()
    {
        var delta = new float[] { 30, 40 };

        var result = AgentClipping.Apply(delta, new Dictionary<string, string> { ["proximal_mu"] = "0.1" });

        Assert.Null(result);
        Assert.Equal([30f, 40f], delta);
    }

    [Fact]
    public void Apply_WithTheKey_ClipsAndReports()
    {
        var delta = new float[] { 30, 40 };
        var metrics = new Dictionary<string, double>();

        var result = AgentClipping.Apply(delta, new Dictionary<string, string> { [AgentClipping.BoundKey] = "5" });
        AgentClipping.Report(result!.Value, metrics);

        Assert.True(L2Clipping.Norm(delta) <= 5);
        Assert.Equal(3, delta[0], 4);
        Assert.Equal(1, metrics[AgentClipping.ClippedMetric]);
        Assert.Throws<FormatException>(() => AgentClipping.Apply(delta, new Dictionary<string, string> { [AgentClipping.BoundKey] = "-1" }));
    }
}
