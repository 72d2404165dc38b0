using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Learning.Personalization;
using Federated.Learning.Reporting;
using Federated.Learning.Strategies;
using Federated.Learning.Tests.Strategies;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using TorchSharp;

namespace Federated.Learning.Tests.Personalization;

public sealed class PersonalizationTests
{
    // Eight samples of two features; class 1 when the features are positive.
    private static TensorDataset Data()
    {
        float[] features = [-1, -0.5f, -0.8f, -1.2f, -0.3f, -0.9f, -1.5f, -0.2f, 1, 0.5f, 0.8f, 1.2f, 0.3f, 0.9f, 1.5f, 0.2f];
        int[] labels = [0, 0, 0, 0, 1, 1, 1, 1];
        return TensorDataset.Materialize(new InMemorySource("tiny", features, labels, [1, 1, 2], 2), Normalization.None, torch.CPU);
    }

    // flatten → fc1 (2 → 3) → fc2 (3 → 2): fc1.weight [3, 2], fc1.bias [3], fc2.weight [2, 3], fc2.bias [2].
    private static Mlp Model()
    {
        torch.manual_seed(5);
        return new Mlp(new ModelShape(1, 1, 2, 2), [3]);
    }

    private static ClientRound RoundFor(ModelWeights weights, float[] global, TrainingOptions training, Dictionary<string, string> config, Dictionary<string, float[]> local, int round = 1) => new()
    {
        Round = round,
        Config = config,
        Global = global,
        ServerTensors = new Dictionary<string, float[]>(),
        Weights = weights,
        Training = training,
        LocalState = local,
    };

    private static readonly TrainingOptions Options = new() { Epochs = 5, BatchSize = 4, LearningRate = 0.5, Seed = 1 };

    [Fact]
    public void HeadSelection_LastLayer_TakesTheLastModulesEntries()
    {
        using var model = Model();
        var layout = new ModelWeights(model).Layout;

        var head = HeadSelection.LastLayers(1).Resolve(layout);
        var byPrefix = HeadSelection.ByPrefixes("fc2").Resolve(layout);

        Assert.Equal(["fc2.weight", "fc2.bias"], head.Select(e => e.Name));
        Assert.Equal(head, byPrefix);
        Assert.Equal(8, HeadSelection.Length(head));
        Assert.Equal(["fc2.bias"], HeadSelection.ByPrefixes("fc2.bias").Resolve(layout).Select(e => e.Name));
    }

    [Theory]
    [InlineData("fc9", "'fc9' names no weight")]
    [InlineData("fc1,fc2", "takes every weight")]
    public void HeadSelection_BadPrefixes_Throw(string prefixes, string message)
    {
        using var model = Model();
        var layout = new ModelWeights(model).Layout;

        var error = Assert.Throws<ArgumentException>(() => HeadSelection.ByPrefixes(prefixes).Resolve(layout));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeadSelection_AllLayersOrNone_Throw()
    {
        using var model = Model();
        var layout = new ModelWeights(model).Layout;

        Assert.Contains("whole model", Assert.Throws<ArgumentException>(() => HeadSelection.LastLayers(2).Resolve(layout)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => HeadSelection.LastLayers(0));
        Assert.Throws<ArgumentException>(() => HeadSelection.ByPrefixes(" , "));
    }

    [Fact]
    public void PersonalHead_KeepsTheTrainedHead_ZeroesItsDelta_AndStartsTheNextRoundFromIt()
    {
        using var data = Data();
        using var model = Model();
        var weights = new ModelWeights(model);
        var global = weights.Flatten();
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var config = new Dictionary<string, string> { [FedPer.HeadLayersKey] = "1" };
        var round = RoundFor(weights, global, Options, config, state);
        var head = Assert.IsType<PersonalHead>(Assert.Single(ClientAlgorithms.Create(round)));
        Assert.False(head.HasStoredHead);
        var start = global.ToArray();
        head.TrainingStart(start);
        Assert.Equal(global, start);

        new LocalTrainer().Train(model, data, Options);
        var local = weights.Flatten();
        var trainedHead = HeadSelection.Extract(head.Head, local);
        head.Personalize(round, local, (_, _) => throw new InvalidOperationException("FedPer trains nothing more"));

        // The kept head is the trained one; the uploaded model has the global head (zero head delta) and the trained body.
        Assert.Equal(trainedHead, state[PersonalHead.StateKey]);
        Assert.NotEqual(HeadSelection.Extract(head.Head, global), trainedHead);
        var delta = new float[global.Length];
        WeightVectors.Delta(local, global, delta);
        Assert.All(HeadSelection.Extract(head.Head, delta), d => Assert.Equal(0f, d));
        Assert.Contains(delta[..6], d => d != 0); // fc1.weight moved

        // Next round, another global model: training and evaluation start from that body under the kept head.
        var nextGlobal = global.Select(v => v + 1f).ToArray();
        var next = Assert.IsType<PersonalHead>(Assert.Single(ClientAlgorithms.Create(RoundFor(weights, nextGlobal, Options, config, state, round: 2))));
        Assert.True(next.HasStoredHead);
        var used = nextGlobal.ToArray();
        next.PersonalModel(used);
        Assert.Equal(trainedHead, HeadSelection.Extract(next.Head, used));
        Assert.Equal(nextGlobal[..9], used[..9]);
    }

    [Fact]
    public void FedPer_ZeroHeadDeltas_LeaveTheGlobalHeadWhereItWas()
    {
        var strategy = StrategyFactory.Create("fedper", new Dictionary<string, string> { ["head"] = "fc2" });
        var global = Enumerable.Range(0, 17).Select(i => (float)i).ToArray();
        float[] Delta(float body) => [.. Enumerable.Repeat(body, 9), .. new float[8]];

        var result = StrategyTestKit.Round(strategy, global, [StrategyTestKit.Update("a", 10, Delta(1)), StrategyTestKit.Update("b", 30, Delta(-1))]);

        Assert.Equal("fedper", strategy.Name);
        Assert.Equal("fc2", strategy.ConfigureFit(1)[FedPer.HeadKey]);
        Assert.Equal(global[9..], result.Global[9..]);
        Assert.Equal(global[0] - 0.5f, result.Global[0]);
    }

    [Fact]
    public void DittoPersonalModel_TrainsAPersonalModelPulledTowardsTheGlobal_AndKeepsIt()
    {
        using var data = Data();
        using var model = Model();
        var weights = new ModelWeights(model);
        var global = weights.Flatten();

        float[] Personal(double lambda, Dictionary<string, float[]> state)
        {
            weights.Load(global);
            var config = new Dictionary<string, string> { [Ditto.LambdaKey] = lambda.ToString(System.Globalization.CultureInfo.InvariantCulture), [Ditto.EpochsKey] = "20" };
            var round = RoundFor(weights, global, Options, config, state);
            var ditto = Assert.IsType<DittoPersonalModel>(Assert.Single(ClientAlgorithms.Create(round)));
            var uploaded = weights.Flatten();
            var metrics = ditto.Personalize(round, uploaded, (plugins, options) => new LocalTrainer(plugins).Train(model, data, options));
            Assert.Equal(global, uploaded); // the update it uploads is not touched
            Assert.True(double.IsFinite(metrics["ditto_personal_loss"]));
            return state[DittoPersonalModel.StateKey];
        }

        var loose = Personal(0, []);
        // lr·λ stays below 2 so the proximal pull itself is stable under SGD.
        var tight = Personal(1, []);

        double Distance(float[] v) => Math.Sqrt(v.Zip(global, (a, b) => (double)(a - b) * (a - b)).Sum());
        Assert.True(Distance(loose) > 0, "the personal model did not move from the global model");
        Assert.True(Distance(tight) < Distance(loose) * 0.8, $"λ = 1 should keep the personal model nearer the global one ({Distance(tight)} vs {Distance(loose)})");

        // The next round starts from (and evaluates) the kept personal model, not the global one.
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal) { [DittoPersonalModel.StateKey] = loose };
        var next = new DittoPersonalModel(RoundFor(weights, global, Options, [], state, round: 2), 0.1, 0);
        Assert.True(next.HasStoredModel);
        var used = global.ToArray();
        next.PersonalModel(used);
        Assert.Equal(loose, used);
    }

    [Fact]
    public void ClientAlgorithms_FedPerAndDittoTogether_OrBadValues_Throw()
    {
        using var model = Model();
        var weights = new ModelWeights(model);
        var global = weights.Flatten();
        IReadOnlyList<IClientAlgorithm> Create(Dictionary<string, string> config) => ClientAlgorithms.Create(RoundFor(weights, global, Options, config, []));

        Assert.Contains("both", Assert.Throws<ArgumentException>(() => Create(new() { [FedPer.HeadKey] = "fc2", [Ditto.LambdaKey] = "0.1" })).Message, StringComparison.Ordinal);
        Assert.Contains(Ditto.LambdaKey, Assert.Throws<ArgumentException>(() => Create(new() { [Ditto.LambdaKey] = "-1" })).Message, StringComparison.Ordinal);
        Assert.Contains(Ditto.LambdaKey, Assert.Throws<ArgumentException>(() => Create(new() { [Ditto.EpochsKey] = "2" })).Message, StringComparison.Ordinal);
        Assert.Contains(FedPer.HeadLayersKey, Assert.Throws<ArgumentException>(() => Create(new() { [FedPer.HeadLayersKey] = "zero" })).Message, StringComparison.Ordinal);
        Assert.Contains("exclude", Assert.Throws<ArgumentException>(() => Create(new() { [FedPer.HeadLayersKey] = "1", [FedPer.HeadKey] = "fc2" })).Message, StringComparison.Ordinal);
        Assert.Empty(Create([]));
    }

    [Theory]
    [InlineData("fedper", "head", "fc2", "head_layers", "1", "exclude each other")]
    [InlineData("fedper", "head_layers", "0", null, null, "at least 1")]
    [InlineData("fedper", "head_layers", "1.5", null, null, "whole number")]
    [InlineData("ditto", "lambda", "-0.1", null, null, "lambda")]
    [InlineData("ditto", "personal_epochs", "-1", null, null, "personal_epochs")]
    [InlineData("ditto", "mu", "0.1", null, null, "no option 'mu'")]
    public void StrategyFactory_BadPersonalisationOptions_Throw(string name, string key, string value, string? key2, string? value2, string message)
    {
        var options = new Dictionary<string, string> { [key] = value };
        if (key2 is not null)
        {
            options[key2] = value2!;
        }

        var error = Assert.Throws<ArgumentException>(() => StrategyFactory.Create(name, options));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StrategyFactory_Ditto_SendsLambdaAndEpochs()
    {
        var ditto = StrategyFactory.Create("ditto", new Dictionary<string, string> { ["lambda"] = "0.5", ["personal_epochs"] = "3" });
        var fedper = StrategyFactory.Create("fedper");

        Assert.Equal("0.5", ditto.ConfigureFit(1)[Ditto.LambdaKey]);
        Assert.Equal("3", ditto.ConfigureFit(1)[Ditto.EpochsKey]);
        Assert.Equal("1", fedper.ConfigureFit(1)[FedPer.HeadLayersKey]);
    }

    [Fact]
    public void MetricSpread_HandCase()
    {
        var spread = MetricSpread.Of([0.3, 1.0, 0.1, double.NaN, 0.4, 0.2])!;

        // Finite values sorted: 0.1 0.2 0.3 0.4 1.0. Mean 0.4; deviations −0.3 −0.2 −0.1 0 0.6, squares sum 0.5, /5 = 0.1.
        // p10 at rank 0.4: 0.1 + 0.4·(0.2 − 0.1) = 0.14; the median at rank 2: 0.3.
        Assert.Equal(5, spread.Count);
        Assert.Equal(0.4, spread.Mean, 12);
        Assert.Equal(Math.Sqrt(0.1), spread.Std, 12);
        Assert.Equal(0.1, spread.Min);
        Assert.Equal(0.14, spread.P10, 12);
        Assert.Equal(0.3, spread.Median, 12);
        Assert.Equal(1.0, spread.Max);
        Assert.Equal(["acc_n", "acc_mean", "acc_std", "acc_min", "acc_p10", "acc_median", "acc_max"], spread.Columns("acc").Select(c => c.Key));
        Assert.Equal(0.25, MetricSpread.Percentile([0.0, 0.5, 1.0], 0.25), 12);
        Assert.Null(MetricSpread.Of([double.NaN]));
        Assert.Equal(0, MetricSpread.Of([0.7])!.Std);
    }
}
