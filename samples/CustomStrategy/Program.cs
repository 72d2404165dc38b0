// Sample (b): bring your own strategy. An IStrategy of your own (here: FedAvg whose server clips every client update to
// a maximum L2 norm before averaging, a common defence against one client's oversized update), registered under a
// name and chosen by the coordinator's configuration.
//
//   dotnet run --project samples/CustomStrategy -- [rounds]
using System.Globalization;
using Federated.Learning.Strategies;
using Federated.Samples;

var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;

// Options come from Coordinator:StrategyOptions (strings); the factory validates its own.
StrategyFactory.Register("clipped-fedavg", options => new ClippedFedAvg(
    options.TryGetValue("max_norm", out var text) ? double.Parse(text, CultureInfo.InvariantCulture) : 1.0));

await using var federation = await LoopbackFederation.StartAsync(new Dictionary<string, string?>
{
    ["Coordinator:Model"] = "mlp",
    ["Coordinator:NumClasses"] = "4",
    ["Coordinator:Rounds"] = rounds.ToString(CultureInfo.InvariantCulture),
    ["Coordinator:Strategy"] = "clipped-fedavg",
    ["Coordinator:StrategyOptions:max_norm"] = "0.5",
    ["Coordinator:Evaluation:Source"] = "none",
});
for (var i = 0; i < 2; i++)
{
    federation.StartAgent(i, count: 2, new Dictionary<string, string?> { ["Client:Data:Source"] = "synthetic", ["Client:Data:SyntheticCount"] = "200", ["Client:Data:SyntheticClasses"] = "4" });
}

await federation.WaitUntilFinishedAsync(TimeSpan.FromMinutes(5));
foreach (var round in federation.RoundMetrics())
{
    Console.WriteLine($"round {round["round"]}: clipped-fedavg aggregated {round["results"]} updates, clipped {round["agg_clipped"]}, mean norm {round["agg_mean_norm"]}, train loss {round["train_loss"]}");
}

/// <summary>FedAvg over updates clipped to <c>maxNorm</c>: the aggregation math is the strategy; the round loop is the coordinator's.</summary>
internal sealed class ClippedFedAvg(double maxNorm) : IStrategy
{
    public string Name => "clipped-fedavg";

    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => new Dictionary<string, string>();

    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => new Dictionary<string, float[]>();

    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) => new Aggregator(globalModel.ToArray(), maxNorm);

    public IReadOnlyDictionary<string, float[]> SaveState() => new Dictionary<string, float[]>();

    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
    }

    /// <summary>Folds each update in as it arrives (memory: one model), weighted by its examples.</summary>
    private sealed class Aggregator(float[] global, double maxNorm) : IRoundAggregator
    {
        private readonly double[] _sum = new double[global.Length];
        private long _examples;
        private int _clipped;
        private double _norms;

        public bool IsIncremental => true;

        public int Count { get; private set; }

        public void Add(ClientUpdate update)
        {
            ArgumentNullException.ThrowIfNull(update);
            if (update.Delta.Length != global.Length || update.NumExamples <= 0)
            {
                throw new ArgumentException($"Update from {update.ClientId} does not fit the model.", nameof(update));
            }

            var norm = Math.Sqrt(update.Delta.Sum(v => (double)v * v));
            var scale = norm > maxNorm ? maxNorm / norm : 1.0;
            _clipped += scale < 1 ? 1 : 0;
            _norms += norm;
            for (var i = 0; i < _sum.Length; i++)
            {
                _sum[i] += update.Delta[i] * scale * update.NumExamples;
            }

            _examples += update.NumExamples;
            Count++;
        }

        public AggregationResult Finish(IReadOnlyList<ClientFailure> failures)
        {
            if (Count == 0)
            {
                throw new InvalidOperationException("No update to aggregate.");
            }

            var next = global.Select((w, i) => (float)(w + (_sum[i] / _examples))).ToArray();
            return new AggregationResult(next, Count, new Dictionary<string, double> { ["clipped"] = _clipped, ["mean_norm"] = _norms / Count });
        }
    }
}
