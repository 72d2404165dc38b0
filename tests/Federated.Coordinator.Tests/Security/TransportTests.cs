using Federated.Client.Hosting;
using Federated.Client.Transfers;
using Federated.Coordinator.Tests.Functional;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;

namespace Federated.Coordinator.Tests.Security;

/// <summary>TLS, mutual TLS, the plaintext policy, health and reflection against a real coordinator (Kestrel on 127.0.0.1).</summary>
public sealed class TransportTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-transport-").FullName;
    private readonly TestCertificates _certificates = new();

    public void Dispose()
    {
        _certificates.Dispose();
        Directory.Delete(_state, recursive: true);
    }

    private Dictionary<string, string?> Settings(string plaintext = "refuse")
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:MinAvailable"] = "50";
        settings["Coordinator:Security:Plaintext"] = plaintext;
        return settings;
    }

    private static GrpcChannel Channel(string address, ClientTlsOptions? tls = null) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = ClientTls.Apply(new SocketsHttpHandler(), tls), DisposeHttpClient = true });

    private static Task<StatusReply> StatusAsync(GrpcChannel channel) =>
        new Protocol.V1.Coordinator.CoordinatorClient(channel)
            .GetStatusAsync(new StatusRequest { ProtocolVersion = ProtocolVersion.Current }, deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync;

    [Fact]
    public async Task Tls_SelfSignedCertificate_HandshakeWorksAndPlaintextIsRefused()
    {
        var (certificate, key) = _certificates.SelfSignedServer();
        var settings = Settings();
        settings["Coordinator:Security:Tls:CertificatePath"] = certificate;
        settings["Coordinator:Security:Tls:KeyPath"] = key;
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        var port = new Uri(coordinator.Address).Port;

        using var secure = Channel(coordinator.Address, new ClientTlsOptions { CaCertificatePath = certificate });
        var status = await StatusAsync(secure);
        using var untrusting = Channel(coordinator.Address);
        var untrusted = await Assert.ThrowsAsync<RpcException>(() => StatusAsync(untrusting));
        using var plain = Channel($"http://127.0.0.1:{port}");
        var plaintext = await Assert.ThrowsAsync<RpcException>(() => StatusAsync(plain));

        Assert.StartsWith("https://", coordinator.Address, StringComparison.Ordinal);
        Assert.Equal(ProtocolVersion.Current, status.ProtocolVersion);
        Assert.Contains("SSL connection could not be established", untrusted.Status.Detail, StringComparison.Ordinal); // the system roots do not know the test certificate
        Assert.NotEqual(StatusCode.OK, plaintext.StatusCode);
    }

    [Fact]
    public async Task Plaintext_RefusedByPolicy_IsUnauthenticatedButHealthAnswers()
    {
        var (certificate, key) = _certificates.SelfSignedServer();
        var settings = Settings();
        settings["Coordinator:Security:Tls:CertificatePath"] = certificate;
        settings["Coordinator:Security:Tls:KeyPath"] = key;
        await using var coordinator = await TestCoordinator.StartAsync(settings, https: false); // a cleartext endpoint by mistake
        using var channel = Channel(coordinator.Address);

        var error = await Assert.ThrowsAsync<RpcException>(() => StatusAsync(channel));
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("requires TLS", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task MutualTls_ClientCertificateFromTheCa_WorksAndWithoutOneFails()
    {
        var (authority, authorityPath) = _certificates.Authority("ca");
        var (rogue, _) = _certificates.Authority("rogue");
        var (serverCertificate, serverKey) = _certificates.Issue(authority, "server", server: true);
        var (clientCertificate, clientKey) = _certificates.Issue(authority, "client", server: false);
        var (rogueCertificate, rogueKey) = _certificates.Issue(rogue, "rogue-client", server: false);
        var settings = Settings();
        settings["Coordinator:Security:Tls:CertificatePath"] = serverCertificate;
        settings["Coordinator:Security:Tls:KeyPath"] = serverKey;
        settings["Coordinator:Security:Tls:ClientCaPath"] = authorityPath;
        await using var coordinator = await TestCoordinator.StartAsync(settings);

        using var mutual = Channel(coordinator.Address, new ClientTlsOptions { CaCertificatePath = authorityPath, CertificatePath = clientCertificate, KeyPath = clientKey });
        var status = await StatusAsync(mutual);
        using var anonymous = Channel(coordinator.Address, new ClientTlsOptions { CaCertificatePath = authorityPath });
        var withoutCertificate = await Assert.ThrowsAsync<RpcException>(() => StatusAsync(anonymous));
        using var impostor = Channel(coordinator.Address, new ClientTlsOptions { CaCertificatePath = authorityPath, CertificatePath = rogueCertificate, KeyPath = rogueKey });
        var otherCa = await Assert.ThrowsAsync<RpcException>(() => StatusAsync(impostor));

        Assert.Equal(ProtocolVersion.Current, status.ProtocolVersion);
        Assert.NotEqual(StatusCode.OK, withoutCertificate.StatusCode);
        Assert.NotEqual(StatusCode.OK, otherCa.StatusCode);
        authority.Dispose();
        rogue.Dispose();
    }

    [Fact]
    public async Task Health_Check_AnswersServingForTheServerAndTheCoordinatorService()
    {
        await using var coordinator = await TestCoordinator.StartAsync(Settings(plaintext: "loopback"));
        using var channel = Channel(coordinator.Address);
        var health = new Health.HealthClient(channel);

        var overall = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        var service = await health.CheckAsync(new HealthCheckRequest { Service = "federated.v1.Coordinator" }, deadline: DateTime.UtcNow.AddSeconds(10));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, overall.Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, service.Status);
    }

    [Fact]
    public async Task Reflection_ListServices_IncludesTheCoordinatorAndHealth()
    {
        await using var coordinator = await TestCoordinator.StartAsync(Settings(plaintext: "loopback"));
        using var channel = Channel(coordinator.Address);
        using var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: DateTime.UtcNow.AddSeconds(10));

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();

        Assert.Contains("federated.v1.Coordinator", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    [Fact]
    public async Task Reflection_TurnedOff_IsUnimplemented()
    {
        var settings = Settings(plaintext: "loopback");
        settings["Coordinator:Security:Reflection"] = "false";
        await using var coordinator = await TestCoordinator.StartAsync(settings);
        using var channel = Channel(coordinator.Address);
        using var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: DateTime.UtcNow.AddSeconds(10));

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
            await call.ResponseStream.MoveNext(CancellationToken.None);
        });

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }
}
