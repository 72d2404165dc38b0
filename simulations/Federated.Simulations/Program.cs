using System.CommandLine;
using Federated.Learning.Runtime;
using Federated.Simulations.Baseline;
using Federated.Simulations.Evaluate;
using Federated.Simulations.Fault;
using Federated.Simulations.Fuzz;
using Federated.Simulations.Grid;
using Federated.Simulations.Launch;
using Federated.Simulations.Load;
using Federated.Simulations.Reference;
using Federated.Simulations.Scenarios;

NativeRuntime.TuneProcess();
var root = new RootCommand("Federated simulations: many clients on one machine running the real client code, and the centralised baseline they are compared with.")
{
    BaselineCommand.Create(),
    LaunchCommand.Create(),
    CollectCommand.Create(),
    FaultCommand.Create(),
    FaultsCommand.Create(),
    ConfigReferenceCommand.Create(),
    EvaluateCommand.Create(),
    FuzzCommand.Create(),
    LoadCommand.Create(),
};
RunCommand.Attach(root);
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
