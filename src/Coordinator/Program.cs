using Federated.Coordinator.Hosting;
using Federated.Learning.Runtime;

NativeRuntime.Initialize();
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddFederatedCoordinator(builder.Configuration);
var app = builder.Build();
app.MapFederatedCoordinator();
app.Run();
