// Sample (a): bring your own model and data. A TorchSharp module of your own, registered under a name, and a data
// source of your own, plugged into the agent; the coordinator and two agents then train it over gRPC.
//
//   dotnet run --project samples/CustomModel -- [rounds]
using Federated.Client.Hosting;
using Federated.Learning.Data;
using Federated.Learning.Models;
using Federated.Samples;
using TorchSharp;
using static TorchSharp.torch;

var rounds = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 5;

// 1. The model: any Module<Tensor, Tensor>. Register it in every process that builds it (the coordinator's and each
//    agent's; here they share one process).
ModelFactory.Register("stripes-net", shape => new StripesNet(shape));

// 2. The federation: the coordinator names the model; each agent trains on its share of the custom source.
await using var federation = await LoopbackFederation.StartAsync(new Dictionary<string, string?>
{
    ["Coordinator:Model"] = "stripes-net",
    ["Coordinator:InputShape:0"] = "1",
    ["Coordinator:InputShape:1"] = "6",
    ["Coordinator:InputShape:2"] = "6",
    ["Coordinator:NumClasses"] = "2",
    ["Coordinator:Rounds"] = rounds.ToString(System.Globalization.CultureInfo.InvariantCulture),
    ["Coordinator:Evaluation:Source"] = "none",
});
for (var i = 0; i < 2; i++)
{
    federation.StartAgent(i, count: 2, services: s => s.AddFederatedDataSource(_ => new StripesSource(count: 400, seed: 1)));
}

var status = await federation.WaitUntilFinishedAsync(TimeSpan.FromMinutes(5));
var history = federation.RoundMetrics();
Console.WriteLine($"stripes-net: {status.CurrentRound} rounds with 2 agents; mean train loss {history[0]["train_loss"]} in round 1, {history[^1]["train_loss"]} in round {history.Count}.");
return double.Parse(history[^1]["train_loss"], System.Globalization.CultureInfo.InvariantCulture) < double.Parse(history[0]["train_loss"], System.Globalization.CultureInfo.InvariantCulture) ? 0 : 1;

/// <summary>A small convolutional classifier. The registered names (conv.weight, head.bias, ...) travel on the wire.</summary>
internal sealed class StripesNet : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> _conv;
    private readonly nn.Module<Tensor, Tensor> _head;

    public StripesNet(ModelShape shape) : base(nameof(StripesNet))
    {
        _conv = nn.Conv2d(shape.Channels, 4, kernel_size: 3, padding: 1);
        _head = nn.Linear(4 * shape.Height * shape.Width, shape.NumClasses);
        register_module("conv", _conv);
        register_module("head", _head);
    }

    public override Tensor forward(Tensor input) => _head.call(nn.functional.relu(_conv.call(input)).flatten(1));
}

/// <summary>A data source of your own: 6×6 images of horizontal (label 0) or vertical (label 1) stripes, with noise.</summary>
internal sealed class StripesSource : ILabelledSource
{
    private readonly int[] _labels;
    private readonly float[] _noise;

    public StripesSource(int count, int seed)
    {
        var random = new Random(seed);
        _labels = [.. Enumerable.Range(0, count).Select(_ => random.Next(2))];
        _noise = [.. Enumerable.Range(0, count * 36).Select(_ => (float)(random.NextDouble() - 0.5))];
    }

    public string Name => "stripes";

    public int Count => _labels.Length;

    public int NumClasses => 2;

    public IReadOnlyList<int> SampleShape { get; } = [1, 6, 6];

    public ReadOnlySpan<int> Labels => _labels;

    public void CopyFeatures(int index, Span<float> destination)
    {
        for (var p = 0; p < 36; p++)
        {
            var (row, column) = (p / 6, p % 6);
            destination[p] = ((_labels[index] == 0 ? row : column) % 2) + _noise[(index * 36) + p];
        }
    }
}
