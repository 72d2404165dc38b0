// Sample (c): client middleware. Code of your own that sees every update an agent sends, after local training and
// before upload (here it adds two metrics, the update's L2 norm and its largest coordinate), registered with one line.
// A small audit on the coordinator's side shows the metrics arrive with every update.
//
//   dotnet run --project samples/ClientMiddleware -- [rounds]
using System.Globalization;
using Federated.Client.Hosting;
using Federated.Client.Middleware;
using Federated.Learning.Strategies;
using Federated.Samples;

var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
var audit = new Audit(StrategyFactory.Create("fedavg"));
StrategyFactory.Register("audited-fedavg", _ => audit);

await using var federation = await LoopbackFederation.StartAsync(new Dictionary<string, string?>
{
    ["Coordinator:Model"] = "mlp",
    ["Coordinator:NumClasses"] = "4",
    ["Coordinator:Rounds"] = rounds.ToString(CultureInfo.InvariantCulture),
    ["Coordinator:Strategy"] = "audited-fedavg",
    ["Coordinator:Evaluation:Source"] = "none",
});
for (var i = 0; i < 2; i++)
{
    federation.StartAgent(
        i,
        count: 2,
        new Dictionary<string, string?> { ["Client:Data:Source"] = "synthetic", ["Client:Data:SyntheticCount"] = "200", ["Client:Data:SyntheticClasses"] = "4" },
        services => services.AddUpdateMiddleware<UpdateNormMetric>());
}

await federation.WaitUntilFinishedAsync(TimeSpan.FromMinutes(5));
Console.WriteLine($"{audit.Updates} updates reached the coordinator, {audit.WithMetric} carried update_l2_norm (mean {audit.NormSum / Math.Max(1, audit.WithMetric):F4}).");
return audit.Updates > 0 && audit.WithMetric == audit.Updates ? 0 : 1;

/// <summary>The middleware: one method, called once per update, on the agent's training thread.</summary>
internal sealed class UpdateNormMetric : IUpdateMiddleware
{
    public void OnUpdate(UpdateContext update)
    {
        update.Metrics["update_l2_norm"] = Math.Sqrt(update.Delta.Sum(v => (double)v * v));
        update.Metrics["update_max_abs"] = update.Delta.Max(Math.Abs);
    }
}

/// <summary>FedAvg that also counts, on the coordinator, the updates whose metrics carry the middleware's metric.</summary>
internal sealed class Audit(IStrategy inner) : IStrategy
{
    public int Updates;
    public int WithMetric;
    public double NormSum;

    public string Name => inner.Name;

    public IReadOnlyDictionary<string, string> ConfigureFit(int round) => inner.ConfigureFit(round);

    public IReadOnlyDictionary<string, float[]> ServerTensors(int round) => inner.ServerTensors(round);

    public IRoundAggregator BeginRound(int round, ReadOnlyMemory<float> globalModel, int selected, int available) =>
        new Counting(inner.BeginRound(round, globalModel, selected, available), this);

    public IReadOnlyDictionary<string, float[]> SaveState() => inner.SaveState();

    public void LoadState(IReadOnlyDictionary<string, float[]> state) => inner.LoadState(state);

    private sealed class Counting(IRoundAggregator inner, Audit audit) : IRoundAggregator
    {
        public bool IsIncremental => inner.IsIncremental;

        public int Count => inner.Count;

        public void Add(ClientUpdate update)
        {
            Interlocked.Increment(ref audit.Updates);
            if (update.Metrics.TryGetValue("update_l2_norm", out var norm))
            {
                Interlocked.Increment(ref audit.WithMetric);
                audit.NormSum += norm;
            }

            inner.Add(update);
        }

        public AggregationResult Finish(IReadOnlyList<ClientFailure> failures) => inner.Finish(failures);
    }
}
