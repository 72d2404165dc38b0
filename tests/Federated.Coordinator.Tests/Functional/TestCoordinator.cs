using System.Collections.Concurrent;
using System.Net;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Rounds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>A real coordinator (Kestrel, HTTP/2 on 127.0.0.1, a free port) with a small MLP and synthetic evaluation data.</summary>
internal sealed class TestCoordinator : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestCoordinator(WebApplication app, string address, LogSink logs)
    {
        _app = app;
        Address = address;
        Logs = logs;
    }

    public string Address { get; }

    public LogSink Logs { get; }

    public RunStatus Status => _app.Services.GetRequiredService<RunStatus>();

    public IServiceProvider Services => _app.Services;

    /// <summary>A service of the running coordinator.</summary>
    public T Service<T>() where T : notnull => _app.Services.GetRequiredService<T>();


    /// <summary>Default settings: 8×8 grey inputs, 4 classes, MLP, FedAvg, SGD, synthetic evaluation.</summary>
    public static Dictionary<string, string?> Settings(string stateDirectory, int rounds = 2) => new()
    {
        ["Coordinator:StateDirectory"] = stateDirectory,
        ["Coordinator:Model"] = "mlp",
        ["Coordinator:InputShape:0"] = "1",
        ["Coordinator:InputShape:1"] = "8",
        ["Coordinator:InputShape:2"] = "8",
        ["Coordinator:NumClasses"] = "4",
        ["Coordinator:Rounds"] = rounds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Coordinator:MinAvailable"] = "2",
        ["Coordinator:MinFit"] = "1",
        ["Coordinator:RoundDeadlineSeconds"] = "30",
        ["Coordinator:Training:Optimizer"] = "sgd",
        ["Coordinator:Training:LearningRate"] = "0.05",
        ["Coordinator:Training:BatchSize"] = "16",
        ["Coordinator:Evaluation:Source"] = "synthetic",
        ["Coordinator:Evaluation:SyntheticCount"] = "64",
        ["Coordinator:Evaluation:Normalization"] = "none",
        ["Coordinator:Evaluation:Threads"] = "1",
        ["Coordinator:HeartbeatSeconds"] = "0.5",
        ["Coordinator:AgentTimeoutSeconds"] = "10",
        ["Coordinator:ChunkBytes"] = "65536",
        // Wire-level tests enrol keyless scripted agents over loopback h2c; the security tests override these.
        ["Coordinator:Security:Mode"] = "open",
        ["Coordinator:Security:Plaintext"] = "loopback",
    };

    /// <summary>
    /// Starts the coordinator; it listens with TLS when a certificate is configured, unless <paramref name="https"/> says
    /// otherwise, and, with <paramref name="http1Port"/>, also in cleartext HTTP/1.1 on that port (the dashboard's browsers).
    /// </summary>
    public static async Task<TestCoordinator> StartAsync(IDictionary<string, string?> settings, int port = 0, Action<IServiceCollection>? services = null, bool? https = null, int? http1Port = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing", ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(settings);
        var tls = https ?? (settings.TryGetValue("Coordinator:Security:Tls:CertificatePath", out var certificate) && !string.IsNullOrEmpty(certificate));
        builder.WebHost.ConfigureKestrel(k =>
        {
            Federated.Coordinator.Security.CoordinatorKestrel.Configure(k, builder.Configuration);
            k.Listen(IPAddress.Loopback, port, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (tls)
                {
                    listen.UseHttps();
                }
            });
            if (http1Port is { } web)
            {
                k.Listen(IPAddress.Loopback, web, listen => listen.Protocols = HttpProtocols.Http1);
            }
        });
        var logs = new LogSink("coordinator");
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        services?.Invoke(builder.Services);
        builder.Services.AddFederatedCoordinator(builder.Configuration);
        var app = builder.Build();
        app.MapFederatedCoordinator();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Single(a => http1Port is not { } web || !a.EndsWith($":{web}", StringComparison.Ordinal));
        return new TestCoordinator(app, address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal), logs);
    }

    /// <summary>Waits until <paramref name="condition"/> holds, failing after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds} s waiting for {what}.");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }
}

/// <summary>Collects log entries so that tests can assert on them (and fail on unexpected errors).</summary>
internal sealed class LogSink(string name) : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, string Category, string Message)> Entries { get; } = new();

    public string Name { get; } = name;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public IEnumerable<string> Errors => Entries.Where(e => e.Level >= LogLevel.Error).Select(e => $"{e.Category}: {e.Message}");

    public bool Contains(string text) => Entries.Any(e => e.Message.Contains(text, StringComparison.Ordinal));

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                sink.Entries.Enqueue((logLevel, category, formatter(state, exception) + (exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")));
            }
        }
    }
}
