// Sample (d): an existing ASP.NET Core web app that also hosts a coordinator. The app keeps its own endpoints (HTTP/1.1
// on one port); AddFederatedCoordinator binds the Coordinator section of its configuration and MapFederatedCoordinator
// maps the gRPC services (HTTP/2 on another port). Agents connect to the gRPC port as to the ready-made executable.
//
//   dotnet run --project samples/WebAppHost                  # web on :5080, gRPC on :5081, until Ctrl+C
//   dotnet run --project samples/WebAppHost -- --smoke       # free ports; calls both sides once, then exits
using System.Net;
using System.Net.Sockets;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Server.Kestrel.Core;

var smoke = args.Contains("--smoke");
var (webPort, grpcPort) = smoke ? (FreePort(), FreePort()) : (5080, 5081);
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [.. args.Where(a => a != "--smoke")], ContentRootPath = AppContext.BaseDirectory });
var smokeState = smoke ? Directory.CreateTempSubdirectory("federated-webapp-").FullName : null;
if (smokeState is not null)
{
    builder.Configuration["Coordinator:StateDirectory"] = smokeState;
}

builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(IPAddress.Loopback, webPort, listen => listen.Protocols = HttpProtocols.Http1);
    kestrel.Listen(IPAddress.Loopback, grpcPort, listen => listen.Protocols = HttpProtocols.Http2);
});

// The app's own services, then the coordinator's.
builder.Services.AddSingleton(new Greeting("Hello from the existing web app."));
builder.Services.AddFederatedCoordinator(builder.Configuration);

var app = builder.Build();

// The app's own endpoints, on the web port only; one of them reads the coordinator's run status.
app.MapGet("/", (Greeting greeting) => greeting.Text).RequireHost($"*:{webPort}");
app.MapGet("/experiment", (RunStatus run) => Results.Json(new { run.RunId, run.CurrentRound, run.TotalRounds, run.Finished }))
    .RequireHost($"*:{webPort}");

// The coordinator's gRPC services (and health, reflection).
app.MapFederatedCoordinator();

if (!smoke)
{
    await app.RunAsync();
    return 0;
}

await app.StartAsync();
using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{webPort}") };
var page = await http.GetStringAsync(new Uri("/", UriKind.Relative));
var experiment = await http.GetStringAsync(new Uri("/experiment", UriKind.Relative));
using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
var status = await new Coordinator.CoordinatorClient(channel).GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current });
Console.WriteLine($"web: {page} /experiment: {experiment}");
Console.WriteLine($"grpc: coordinator protocol {status.ProtocolVersion}, run {status.RunId}, {status.TotalRounds} rounds, {status.ConnectedAgents} agents connected");
await app.StopAsync();
Directory.Delete(smokeState!, recursive: true);
return status.TotalRounds == 3 && page.StartsWith("Hello", StringComparison.Ordinal) ? 0 : 1;

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

/// <summary>A service of the existing app, to show the coordinator's registrations live beside the app's own.</summary>
internal sealed record Greeting(string Text);
