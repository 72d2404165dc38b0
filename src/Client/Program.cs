using Federated.Client.Agent;
using Federated.Client.Hosting;
using Federated.Learning.Runtime;

NativeRuntime.Initialize();
var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddOptions<ClientOptions>()
    .Bind(builder.Configuration.GetSection(ClientOptions.Section))
    .ValidateDataAnnotations()
    .ValidateOnStart();
builder.Services.AddHostedService<AgentWorker>();
builder.Build().Run();
