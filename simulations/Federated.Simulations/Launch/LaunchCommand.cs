using System.CommandLine;

namespace Federated.Simulations.Launch;

/// <summary>The <c>launch</c> command: a coordinator and N agent processes on 127.0.0.1, running real rounds.</summary>
internal static class LaunchCommand
{
    public static Command Create()
    {
        var agents = new Option<int>("--agents") { Description = "Agent processes to start.", DefaultValueFactory = _ => 4 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds to run.", DefaultValueFactory = _ => 3 };
        var partition = new Option<string>("--partition") { Description = "iid, dirichlet:A, shards:K or quantity:B.", DefaultValueFactory = _ => "iid" };
        var maxExamples = new Option<int>("--max-examples") { Description = "Cap each agent's partition at N samples (0 = whole partition).", DefaultValueFactory = _ => 0 };
        var model = new Option<string>("--model") { Description = "mlp, cnn, simple-cnn or resnet8.", DefaultValueFactory = _ => "cnn" };
        var strategy = new Option<string>("--strategy") { Description = "fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, scaffold or fednova.", DefaultValueFactory = _ => "fedavg" };
        var optimizer = new Option<string>("--optimizer") { Description = "Local optimiser: sgd, adam or adamw.", DefaultValueFactory = _ => "adam" };
        var learningRate = new Option<double>("--lr") { Description = "Local learning rate.", DefaultValueFactory = _ => 1e-3 };
        var epochs = new Option<int>("--epochs") { Description = "Local epochs per round.", DefaultValueFactory = _ => 1 };
        var batchSize = new Option<int>("--batch-size") { Description = "Local batch size.", DefaultValueFactory = _ => 64 };
        var data = new Option<DirectoryInfo>("--data")
        {
            Description = "IDX directory. Default: $FEDERATED_DATA or /usr/share/datasets/fashion-mnist.",
            DefaultValueFactory = _ => new DirectoryInfo(Environment.GetEnvironmentVariable("FEDERATED_DATA") ?? Learning.Data.IdxImageSource.DebianFashionMnistDirectory),
        };
        var agentThreads = new Option<int>("--agent-threads") { Description = "libtorch threads per agent process.", DefaultValueFactory = _ => 1 };
        var deadline = new Option<double>("--deadline") { Description = "Round deadline in seconds.", DefaultValueFactory = _ => 600 };
        var seed = new Option<long>("--seed") { Description = "Run seed.", DefaultValueFactory = _ => 1 };
        var extra = new Option<string[]>("--set")
        {
            Description = "Extra coordinator or client settings, e.g. --set Coordinator:Evaluation:BatchSize=128 --set Client:Threads=2 (repeatable).",
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => [],
        };
        var output = new Option<DirectoryInfo>("--out") { Description = "Run directory (state, logs, rounds.csv, summary.md).", DefaultValueFactory = _ => new DirectoryInfo("runs/launch") };

        var command = new Command("launch", "Start a coordinator and N agent processes on 127.0.0.1 and run real federated rounds over gRPC.")
        {
            agents, rounds, partition, maxExamples, model, strategy, optimizer, learningRate, epochs, batchSize, data, agentThreads, deadline, seed, extra, output,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                var settings = new LaunchSettings(
                    Agents: result.GetValue(agents),
                    Rounds: result.GetValue(rounds),
                    Partition: result.GetValue(partition)!,
                    MaxExamples: result.GetValue(maxExamples),
                    Model: result.GetValue(model)!,
                    Strategy: result.GetValue(strategy)!,
                    Optimizer: result.GetValue(optimizer)!,
                    LearningRate: result.GetValue(learningRate),
                    Epochs: result.GetValue(epochs),
                    BatchSize: result.GetValue(batchSize),
                    DataDirectory: result.GetValue(data)!.FullName,
                    AgentThreads: result.GetValue(agentThreads),
                    DeadlineSeconds: result.GetValue(deadline),
                    Seed: result.GetValue(seed),
                    Extra: result.GetValue(extra) ?? [],
                    OutputDirectory: result.GetValue(output)!.FullName);
                settings.Validate();
                if (Directory.Exists(settings.OutputDirectory))
                {
                    Directory.Delete(settings.OutputDirectory, recursive: true);
                }

                return await new ProcessLauncher(ProcessLauncher.ToScenario(settings), settings.Extra, settings.OutputDirectory, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException or TimeoutException)
            {
                await Console.Error.WriteLineAsync($"launch: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }
}

/// <summary>Settings of one launch.</summary>
internal sealed record LaunchSettings(
    int Agents,
    int Rounds,
    string Partition,
    int MaxExamples,
    string Model,
    string Strategy,
    string Optimizer,
    double LearningRate,
    int Epochs,
    int BatchSize,
    string DataDirectory,
    int AgentThreads,
    double DeadlineSeconds,
    long Seed,
    IReadOnlyList<string> Extra,
    string OutputDirectory)
{
    public void Validate()
    {
        if (Agents < 1 || Rounds < 1 || Epochs < 1 || BatchSize < 1 || MaxExamples < 0 || AgentThreads < 0 || DeadlineSeconds <= 0)
        {
            throw new ArgumentException("--agents, --rounds, --epochs, --batch-size and --deadline must be positive; --max-examples and --agent-threads non-negative.");
        }

        Learning.Data.Partitioning.Partitioners.Parse(Partition);
        foreach (var setting in Extra)
        {
            if (setting.IndexOf('=', StringComparison.Ordinal) <= 0 || !(setting.StartsWith("Coordinator:", StringComparison.Ordinal) || setting.StartsWith("Client:", StringComparison.Ordinal)))
            {
                throw new ArgumentException($"--set takes Coordinator:Key=Value or Client:Key=Value, not '{setting}'.");
            }
        }

        if (!Directory.Exists(DataDirectory))
        {
            throw new ArgumentException($"Data directory '{DataDirectory}' does not exist: install dataset-fashion-mnist or pass --data.");
        }
    }
}
