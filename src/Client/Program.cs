using Federated.Client.Hosting;
using Federated.Learning.Runtime;
using Microsoft.Extensions.Options;

if (OptionsHelp.IsRequested(args))
{
    OptionsHelp.Write(Console.Out);
    return 0;
}

if (AgentCommands.IsCommand(args))
{
    return AgentCommands.Run(args, Console.Out, Console.Error);
}

NativeRuntime.TuneProcess();
// appsettings.json ships next to the binary; relative paths in settings (StateDirectory) still resolve against the working directory.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
ClientConfiguration.AddClientSources(builder.Configuration, args);
builder.Services.AddFederatedClient(builder.Configuration);
// Under systemd (Type=notify) or the Windows service manager the host reports start and stop to it; elsewhere both do nothing.
builder.Services.AddSystemd();
builder.Services.AddWindowsService(o => o.ServiceName = "federated-client");
using var host = builder.Build();
try
{
    // Resolve (bind and validate) the options before the host starts, so a bad setting is one clear line, not a stack trace.
    _ = host.Services.GetRequiredService<IOptions<ClientOptions>>().Value;
}
catch (OptionsValidationException e)
{
    foreach (var failure in e.Failures)
    {
        await Console.Error.WriteLineAsync($"federated-client: {failure}");
    }

    return 2;
}
catch (InvalidOperationException e)
{
    // The binder could not convert a value (e.g. Client:Threads=abc).
    await Console.Error.WriteLineAsync($"federated-client: {e.Message}");
    return 2;
}

await host.RunAsync();
return Environment.ExitCode;
