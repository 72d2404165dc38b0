using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Coordinator.Security;
using Federated.Coordinator.Tests.Functional;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Federated.Coordinator.Tests.Security;

/// <summary>The shipped client worker against a coordinator in <c>keys</c> mode over TLS: one pre-registered key, one one-time token.</summary>
public sealed class KeyedAgentsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("federated-keyed-").FullName;
    private readonly TestCertificates _certificates = new();

    public void Dispose()
    {
        _certificates.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private IHost StartAgent(string address, int index, string? token, string caPath, LogSink logs)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing", DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Client:CoordinatorAddress"] = address,
            ["Client:AgentId"] = $"agent-{index}",
            ["Client:EnrolmentToken"] = token,
            ["Client:Tls:CaCertificatePath"] = caPath,
            ["Client:Device"] = "cpu",
            ["Client:Threads"] = "1",
            ["Client:StateDirectory"] = Path.Combine(_root, $"agent-{index}"),
            ["Client:ReconnectMinSeconds"] = "0.1",
            ["Client:ReconnectMaxSeconds"] = "0.5",
            ["Client:Data:Source"] = "synthetic",
            ["Client:Data:SyntheticCount"] = "128",
            ["Client:Data:SyntheticClasses"] = "4",
            ["Client:Data:Normalization"] = "none",
            ["Client:Data:Clients"] = "2",
            ["Client:Data:Index"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        builder.Logging.AddProvider(logs);
        builder.Services.AddFederatedClient(builder.Configuration);
        var host = builder.Build();
        host.Start();
        return host;
    }

    [Fact]
    public async Task RealAgents_RegisteredKeyAndOneTimeToken_EnrolOverTlsAndFinishARound()
    {
        var (certificate, key) = _certificates.SelfSignedServer();
        var settings = TestCoordinator.Settings(Path.Combine(_root, "coordinator"), rounds: 1);
        settings["Coordinator:InputShape:1"] = "28";
        settings["Coordinator:InputShape:2"] = "28";
        settings["Coordinator:Security:Mode"] = "keys";
        settings["Coordinator:Security:Plaintext"] = "refuse";
        settings["Coordinator:Security:Tls:CertificatePath"] = certificate;
        settings["Coordinator:Security:Tls:KeyPath"] = key;
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        var store = coordinator.Service<AgentKeyStore>();

        // Agent 0's key exists before it starts (provisioned) and is registered; agent 1 creates its own and brings a token.
        var (provisioned, _) = IdentityKeyFile.LoadOrCreate(Path.Combine(_root, "agent-0", "identity.key"));
        using (provisioned)
        {
            store.Register("agent-0", provisioned.PublicKey, "test");
        }

        var (token, _) = store.IssueToken(1, TimeSpan.FromMinutes(10), "agent-1");
        var agentLogs = new LogSink("agents");
        using var agent0 = StartAgent(coordinator.Address, 0, token: null, certificate, agentLogs);
        using var agent1 = StartAgent(coordinator.Address, 1, token, certificate, agentLogs);

        await TestCoordinator.WaitUntilAsync(() => coordinator.Status.Finished, TimeSpan.FromSeconds(120), "a round with keyed agents");

        Assert.Equal(1, coordinator.Status.CompletedRounds);
        Assert.Equal("token:" + store.Current.Tokens.Single().Id, store.FindById("agent-1")?.Source);
        var key1 = await File.ReadAllBytesAsync(Path.Combine(_root, "agent-1", "identity.key"));
        Assert.Equal(32, key1.Length);
        Assert.True(coordinator.Logs.Contains("Agent agent-0 admitted by key (registered)"));
        Assert.Empty(coordinator.Logs.Errors);
        Assert.Empty(agentLogs.Errors);
        await agent0.StopAsync();
        await agent1.StopAsync();
    }
}
