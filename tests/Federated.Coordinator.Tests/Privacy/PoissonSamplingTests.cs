using Federated.Coordinator.Hosting;
using Federated.Coordinator.Privacy;
using Federated.Learning.Privacy;

namespace Federated.Coordinator.Tests.Privacy;

public sealed class PoissonSamplingTests
{
    private static readonly string[] Population = [.. Enumerable.Range(0, 1000).Select(i => $"agent-{i:D4}")];

    private static CoordinatorPrivacy Privacy(double sampleRate, string seed = "7") => CoordinatorPrivacy.Create(new CoordinatorOptions
    {
        Rounds = 200,
        Privacy = { Enabled = true, NoiseMultiplier = 1, SampleRate = sampleRate, Seed = seed },
    })!;

    [Fact]
    public void Sample_FixedSeedOverManyRounds_SelectsEachAgentWithProbabilityQ()
    {
        const double q = 0.1;
        const int rounds = 200;
        var privacy = Privacy(q);
        var counts = Population.ToDictionary(id => id, _ => 0, StringComparer.Ordinal);
        var sizes = new List<int>();

        for (var round = 1; round <= rounds; round++)
        {
            var sample = privacy.Sample(Population, round);
            sizes.Add(sample.Count);
            foreach (var id in sample)
            {
                counts[id]++;
            }
        }

        // Overall: 200,000 Bernoulli(0.1) draws, standard error 6.7e-4 on the rate; 0.003 is about 4.5 of them.
        var rate = sizes.Sum() / (double)(rounds * Population.Length);
        Assert.InRange(rate, q - 0.003, q + 0.003);

        // The cohort size is Binomial(1000, 0.1) (sd 9.5), not a fixed fraction: it varies from round to round.
        var mean = sizes.Average();
        var sd = Math.Sqrt(sizes.Sum(s => (s - mean) * (s - mean)) / (sizes.Count - 1));
        Assert.InRange(sd, 7.5, 11.5);
        Assert.True(sizes.Distinct().Count() > 15, $"cohort sizes: {string.Join(", ", sizes.Distinct())}");

        // Per agent: Binomial(200, 0.1), mean 20, sd 4.2; every agent is sampled sometimes and none far too often.
        Assert.All(counts.Values, c => Assert.InRange(c, 3, 45));
        var perAgentMean = counts.Values.Average();
        Assert.InRange(perAgentMean, 19.4, 20.6);
    }

    [Fact]
    public void Sample_SameSeedAndRound_IsReproducible_AndRoundsDiffer()
    {
        var a = Privacy(0.2, seed: "scenario-1");
        var b = Privacy(0.2, seed: "scenario-1");

        Assert.Equal(a.Sample(Population, 5), b.Sample(Population, 5));
        Assert.NotEqual(a.Sample(Population, 5), a.Sample(Population, 6));
        Assert.NotEqual(a.Sample(Population, 5), Privacy(0.2, seed: "scenario-2").Sample(Population, 5));
    }

    [Fact]
    public void Sample_DoesNotDependOnTheOrderOfThePopulation()
    {
        var privacy = Privacy(0.3);
        var shuffled = Population.Reverse().ToArray();

        Assert.Equal(privacy.Sample(Population, 3), privacy.Sample(shuffled, 3));
    }

    [Fact]
    public void Sample_WithoutSeed_DrawsFromEntropy()
    {
        var first = Privacy(0.5, seed: "").Sample(Population, 1);
        var second = Privacy(0.5, seed: "").Sample(Population, 1);

        // Two OS-entropy keys agreeing on 1000 fair coins has probability 2^-1000.
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void PoissonSample_RateOne_TakesEveryone_AndSmallPopulationsCanBeEmpty()
    {
        Assert.Equal(Population, CoordinatorPrivacy.PoissonSample(Population, 1.0, ChaCha20Random.FromSeed("x")));

        var empties = Enumerable.Range(1, 200).Count(round => CoordinatorPrivacy.PoissonSample(["a", "b"], 0.1, ChaCha20Random.FromSeed("x", (ulong)round)).Count == 0);
        Assert.InRange(empties, 140, 185); // (1 − q)² = 0.81 of 200 rounds is 162
        Assert.Throws<ArgumentOutOfRangeException>(() => CoordinatorPrivacy.PoissonSample(Population, 0, ChaCha20Random.FromSeed("x")));
    }

    [Fact]
    public void Create_TargetEpsilon_CalibratesZForTheConfiguredRounds()
    {
        var privacy = CoordinatorPrivacy.Create(new CoordinatorOptions
        {
            Rounds = 100,
            Privacy = { Enabled = true, TargetEpsilon = 4, SampleRate = 0.1, Delta = 1e-5, Seed = "1" },
        })!;

        // docs/results/privacy.md: the smallest z for ε = 4 over 100 rounds at q = 0.1, δ = 1e-5 is 1.481500.
        Assert.Equal(1.4815, privacy.Options.NoiseMultiplier, 4);
        var spent = RdpAccountant.Epsilon(0.1, privacy.Options.NoiseMultiplier, 100, 1e-5).Epsilon;
        Assert.InRange(spent, 3.999, 4.0);
        Assert.Null(CoordinatorPrivacy.Create(new CoordinatorOptions()));
    }
}
