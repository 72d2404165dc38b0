using Federated.Coordinator.Hosting;
using Federated.Coordinator.Security;
using Federated.Learning.Runtime;
using Microsoft.Extensions.Options;

if (args.Length > 0 && args[0] == "agents")
{
    return AgentsCommand.Run(args[1..], Console.Out, Console.Error);
}

if (args.Length > 0 && args[0] == "runs")
{
    return await Federated.Coordinator.Runs.RunsCommand.RunAsync(args[1..], Console.Out, Console.Error).ConfigureAwait(false);
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
    builder.Host.UseSystemd();
    var settings = builder.Configuration.GetSection(CoordinatorOptions.Section);

    // Extra HTTP/1.1 addresses for Prometheus scrapers and the dashboard's browsers (gRPC in cleartext needs HTTP/2-only
    // endpoints; scrapers and browsers speak HTTP/1.1 there). Invalid addresses are left to the options' validation.
    var http1Urls = new List<Uri>();
    if (settings.GetValue("Prometheus:Enabled", true) && Uri.TryCreate(settings["Prometheus:Url"], UriKind.Absolute, out var metricsUrl) && metricsUrl.Port > 0)
    {
        http1Urls.Add(metricsUrl);
    }

    if (settings.GetValue("Dashboard:Enabled", false) && Uri.TryCreate(settings["Dashboard:Url"], UriKind.Absolute, out var dashboardUrl) && dashboardUrl.Port > 0)
    {
        http1Urls.Add(dashboardUrl);
    }

    http1Urls = http1Urls.DistinctBy(u => u.Port).ToList();
    if (http1Urls.Count > 0)
    {
        var urls = builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey);
        builder.WebHost.UseUrls(string.Join(';', [string.IsNullOrEmpty(urls) ? "http://localhost:5000" : urls, .. http1Urls.Select(u => u.GetLeftPart(UriPartial.Authority))]));
    }

    var http1Ports = http1Urls.Select(u => u.Port).ToArray();
    builder.WebHost.ConfigureKestrel(kestrel => CoordinatorKestrel.Configure(kestrel, builder.Configuration, http1Ports));
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

/// <summary>The executable's entry point; internal, so that an app referencing this package keeps its own <c>Program</c> unambiguous.</summary>
internal sealed partial class Program;
