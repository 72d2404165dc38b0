using Federated.Coordinator.Hosting;
using Federated.Coordinator.Security;
using Federated.Learning.Runtime;
using Microsoft.Extensions.Options;

if (args.Length > 0 && args[0] == "agents")
{
    return AgentsCommand.Run(args[1..], Console.Out, Console.Error);
}

if (args.Any(a => a is "--help" or "-h" or "-?"))
{
    Console.WriteLine(CoordinatorHelp.Text);
    return 0;
}

NativeRuntime.TuneProcess();
try
{
    var builder = WebApplication.CreateBuilder(args);
    var settings = builder.Configuration.GetSection(CoordinatorOptions.Section);

    // An extra HTTP/1.1 address for Prometheus scrapers (gRPC in cleartext needs HTTP/2-only endpoints, scrapers HTTP/1.1).
    var metricsUrl = settings.GetValue("Prometheus:Enabled", true) ? settings["Prometheus:Url"] ?? "" : "";
    var metricsPort = Uri.TryCreate(metricsUrl, UriKind.Absolute, out var parsedMetricsUrl) ? parsedMetricsUrl.Port : -1;
    if (metricsPort > 0)
    {
        var urls = builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey);
        builder.WebHost.UseUrls($"{(string.IsNullOrEmpty(urls) ? "http://localhost:5000" : urls)};{metricsUrl}");
    }

    builder.WebHost.ConfigureKestrel(kestrel => CoordinatorKestrel.Configure(kestrel, builder.Configuration, metricsPort));
    builder.Services.AddFederatedCoordinator(builder.Configuration);
    var app = builder.Build();

    // Validate the settings and load the model and evaluation data before the host starts, so that a bad setting
    // or a missing file is one sentence, not a hosting failure with a stack trace.
    _ = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
    _ = app.Services.GetRequiredService<Federated.Coordinator.Rounds.ServerModel>();
    _ = app.Services.GetRequiredService<Federated.Coordinator.State.IRoundStateStore>();
    _ = app.Services.GetRequiredService<AgentKeyStore>().Current;
    app.MapFederatedCoordinator();
    await app.RunAsync().ConfigureAwait(false);
    return Environment.ExitCode;
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine($"federated-coordinator: invalid settings: {string.Join(" ", e.Failures)}");
    return 2;
}
catch (Exception e) when (e is InvalidDataException or DirectoryNotFoundException or FileNotFoundException or InvalidOperationException or ArgumentException or IOException or System.Security.Cryptography.CryptographicException)
{
    Console.Error.WriteLine($"federated-coordinator: {e.Message}");
    return 2;
}
