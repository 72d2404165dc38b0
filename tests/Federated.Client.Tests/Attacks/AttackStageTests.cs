using Federated.Client.Attacks;
using Federated.Client.Hosting;

namespace Federated.Client.Tests.Attacks;

public sealed class AttackStageTests
{
    private static readonly float[] Delta = [1f, -2f, 3f];

    // Two honest updates: μ = (2, 4), σ (population) = (1, 2).
    private static readonly ReadOnlyMemory<float>[] Honest = [new float[] { 1f, 2f }, new float[] { 3f, 6f }];

    private static AttackStage Stage(string kind, Action<ClientAttackOptions>? configure = null)
    {
        var options = new ClientAttackOptions { Kind = kind };
        configure?.Invoke(options);
        Assert.Empty(Errors(options));
        return new AttackStage(options, "agent-0001");
    }

    private static List<string> Errors(ClientAttackOptions options)
    {
        var errors = new List<string>();
        options.AddErrors(errors);
        return errors;
    }

    [Fact]
    public void SignFlip_DefaultAndScaled_SendMinusScaleTimesDelta()
    {
        Assert.Equal([-1f, 2f, -3f], Stage("signflip").Apply(1, Delta, []));
        Assert.Equal([-4f, 8f, -12f], Stage("signflip", o => o.Scale = 4).Apply(1, Delta, []));
    }

    [Fact]
    public void Scaling_DefaultAndScaled_SendScaleTimesDelta()
    {
        Assert.Equal([10f, -20f, 30f], Stage("scaling").Apply(1, Delta, []));
        Assert.Equal([2.5f, -5f, 7.5f], Stage("scaling", o => o.Scale = 2.5).Apply(1, Delta, []));
    }

    [Fact]
    public void Zero_SendsZerosOfTheDeltasLength()
    {
        Assert.Equal([0f, 0f, 0f], Stage("zero").Apply(1, Delta, []));
    }

    [Fact]
    public void Noise_ReplacesTheDeltaWithGaussianNoiseOfSigma()
    {
        var stage = Stage("noise", o => o.Sigma = 0.5);
        var large = Enumerable.Repeat(1000f, 200_000).ToArray();

        var sent = stage.Apply(3, large, []);

        // Replaced, not added: mean ≈ 0 (the delta's 1000 is gone), standard deviation ≈ σ.
        var mean = sent.Average(v => (double)v);
        var deviation = Math.Sqrt(sent.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(deviation, 0.49, 0.51);
        Assert.Equal(sent, stage.Apply(3, new float[200_000], []));           // the same draw whatever the delta
        Assert.NotEqual(sent, stage.Apply(4, large, []));                     // another round, another draw
        Assert.NotEqual(sent, new AttackStage(stage.Options, "agent-0002").Apply(3, large, [])); // another agent too
    }

    [Fact]
    public void LabelFlip_PoisonsTheDataAndSendsTheDeltaItTrained()
    {
        var stage = Stage("labelflip", o => o.StartRound = 2);

        Assert.False(stage.PoisonsData(1));
        Assert.True(stage.PoisonsData(2));
        Assert.Same(Delta, stage.Apply(2, Delta, []));
        Assert.Equal([9, 8, 0, 5], new[] { 0, 1, 9, 4 }.Select(y => UpdateAttacks.FlipLabel(y, 10)));
        Assert.Throws<ArgumentOutOfRangeException>(() => UpdateAttacks.FlipLabel(10, 10));
    }

    [Theory]
    [InlineData("signflip")]
    [InlineData("scaling")]
    [InlineData("noise")]
    [InlineData("zero")]
    [InlineData("ipm")]
    public void BeforeTheStartRound_TheDeltaPassesUnchanged(string kind)
    {
        var stage = Stage(kind, o => o.StartRound = 3);
        ReadOnlyMemory<float>[] reference = [new float[] { 5f, 5f, 5f }];

        Assert.Same(Delta, stage.Apply(1, Delta, reference));
        Assert.Same(Delta, stage.Apply(2, Delta, reference));
        Assert.NotEqual(Delta, stage.Apply(3, Delta, reference));
        Assert.NotEqual(Delta, stage.Apply(9, Delta, reference));
    }

    [Fact]
    public void Honest_PassesEverythingUnchanged()
    {
        Assert.False(AttackStage.Honest.IsAttacker);
        Assert.Same(Delta, AttackStage.Honest.Apply(1, Delta, []));
        Assert.False(AttackStage.Honest.PoisonsData(1));
        Assert.Equal(0, AttackStage.Honest.EstimateRuns(1));
    }

    [Fact]
    public void Alie_IsMeanMinusZTimesDeviation()
    {
        // μ − 1.5σ = (2 − 1.5, 4 − 3).
        Assert.Equal([0.5f, 1f], Stage("alie", o => o.Z = 1.5).Apply(1, [9f, 9f], Honest));
        Assert.Equal([2f, 4f], UpdateAttacks.MeanAndDeviation(Honest).Mean);
        Assert.Equal([1f, 2f], UpdateAttacks.MeanAndDeviation(Honest).Deviation);
    }

    [Theory]
    [InlineData(20, 4, 0.385320466)] // s = ⌊20/2 + 1⌋ − 4 = 7: Φ⁻¹(13/20)
    [InlineData(20, 6, 0.674489750)] // s = 5: Φ⁻¹(15/20)
    [InlineData(10, 2, 0.253347103)] // s = 4: Φ⁻¹(6/10)
    [InlineData(2, 1, 0.0)]          // s = 1: Φ⁻¹(1/2)
    public void AlieZ_FollowsThePapersFormula(int n, int f, double expected)
    {
        Assert.Equal(expected, UpdateAttacks.AlieZ(n, f), 6);
    }

    [Theory]
    [InlineData(0.5, 0.0)]
    [InlineData(0.975, 1.959963985)]
    [InlineData(0.01, -2.326347874)]
    [InlineData(0.999, 3.090232306)]
    public void InverseNormal_MatchesTables(double p, double expected)
    {
        Assert.Equal(expected, UpdateAttacks.InverseNormal(p), 7);
    }

    [Fact]
    public void AlieZ_WithAnAttackerMajority_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => UpdateAttacks.AlieZ(10, 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => UpdateAttacks.AlieZ(10, 0));
    }

    [Fact]
    public void Ipm_IsMinusEpsilonTimesTheHonestMean()
    {
        Assert.Equal([-1f, -2f], Stage("ipm", o => o.Epsilon = 0.5).Apply(1, [9f, 9f], Honest));
    }

    [Fact]
    public void AlieAndIpm_WithoutOrWithMisfitReferences_Throw()
    {
        Assert.Throws<ArgumentException>(() => Stage("ipm").Apply(1, [1f, 2f], []));
        Assert.Throws<ArgumentException>(() => Stage("alie", o => o.Z = 1).Apply(1, [1f, 2f, 3f], Honest));
    }

    [Fact]
    public void Variants_DecideWhereTheReferenceComesFrom()
    {
        var omniscient = Stage("alie", o => (o.Clients, o.Attackers) = (20, 4));
        var estimated = Stage("ipm", o => (o.Variant, o.EstimateRuns) = ("estimated", 4));

        Assert.True(omniscient.NeedsHonestUpdates(1));
        Assert.Equal(0, omniscient.EstimateRuns(1));
        Assert.False(estimated.NeedsHonestUpdates(1));
        Assert.Equal(4, estimated.EstimateRuns(1));
        Assert.False(Stage("signflip").NeedsHonestUpdates(1));
        Assert.Equal(0.385320466, omniscient.Options.ResolvedZ, 6);
    }

    [Theory]
    [InlineData("kind", "Client:Attack:Kind")]
    [InlineData("start", "Client:Attack:StartRound")]
    [InlineData("scale", "Client:Attack:Scale")]
    [InlineData("sigma", "Client:Attack:Sigma")]
    [InlineData("epsilon", "Client:Attack:Epsilon")]
    [InlineData("variant", "Client:Attack:Variant")]
    [InlineData("alie", "Client:Attack:Clients")]
    [InlineData("runs", "Client:Attack:EstimateRuns")]
    [InlineData("wait", "Client:Attack:WaitSeconds")]
    public void BadOptions_AreOneClearError(string what, string key)
    {
        var options = new ClientAttackOptions { Kind = "signflip" };
        switch (what)
        {
            case "kind": options.Kind = "backdoor"; break;
            case "start": options.StartRound = 0; break;
            case "scale": options.Scale = -1; break;
            case "sigma": options.Sigma = 0; break;
            case "epsilon": options.Epsilon = double.NaN; break;
            case "variant": options.Variant = "psychic"; break;
            case "alie": (options.Kind, options.Clients, options.Attackers) = ("alie", 10, 6); break;
            case "runs": options.EstimateRuns = 1; break;
            case "wait": options.WaitSeconds = 0; break;
        }

        var error = Assert.Single(Errors(options));
        Assert.Contains(key, error, StringComparison.Ordinal);
    }

    [Fact]
    public void ClientOptions_IncludeTheAttackRules()
    {
        var options = new ClientOptions { Attack = new ClientAttackOptions { Kind = "gaussian" } };

        Assert.Contains(options.GetErrors(), e => e.Contains("Client:Attack:Kind", StringComparison.Ordinal));
    }
}
