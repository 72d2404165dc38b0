using Federated.Coordinator.Security;
using Federated.Coordinator.Tests.Functional;
using Federated.Learning.SecureAggregation;
using Federated.Protocol;
using Federated.Protocol.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Federated.Coordinator.Tests.Security;

/// <summary>
/// Agent identity against a real coordinator in <c>keys</c> mode: registered keys, one-time tokens, signed challenges
/// (enrolment and session), replays, revocation and the enrolment rate limit.
/// </summary>
public sealed class IdentityTests : IAsyncLifetime
{
    private readonly string _state = Directory.CreateTempSubdirectory("federated-identity-").FullName;
    private TestCoordinator? _coordinator;

    private TestCoordinator Coordinator => _coordinator!;

    private AgentKeyStore Store => Coordinator.Service<AgentKeyStore>();

    public async Task InitializeAsync()
    {
        var settings = TestCoordinator.Settings(_state, rounds: 1);
        settings["Coordinator:MinAvailable"] = "50"; // no round starts
        settings["Coordinator:Security:Mode"] = "keys";
        settings["Coordinator:Security:ReloadSeconds"] = "0.1";
        _coordinator = await TestCoordinator.StartAsync(settings);
    }

    public async Task DisposeAsync()
    {
        await Coordinator.DisposeAsync();
        Directory.Delete(_state, recursive: true);
    }

    private GrpcChannel Channel() => GrpcChannel.ForAddress(Coordinator.Address);

    [Fact]
    public async Task Enroll_UnknownKey_IsUnauthenticatedAndNamesTheKey()
    {
        using var identity = AgentIdentity.Create();

        var error = await Assert.ThrowsAsync<RpcException>(() => ScriptedAgent.EnrollWithKeyAsync(Channel(), "stranger", identity));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains(Convert.ToBase64String(identity.PublicKey), error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("agents register", error.Status.Detail, StringComparison.Ordinal);
        Assert.Null(Coordinator.Service<Agents.AgentRegistry>().Find("stranger"));
    }

    [Fact]
    public async Task Enroll_KeylessAgent_IsUnauthenticated()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => ScriptedAgent.EnrollAsync(Coordinator.Address, "keyless"));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("by key", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enroll_RegisteredKey_OpensASignedSession()
    {
        using var identity = AgentIdentity.Create();
        Store.Register("known", identity.PublicKey, "test");

        await using var agent = await ScriptedAgent.EnrollWithKeyAsync(Channel(), "", identity);
        await agent.ConnectAsync();
        var welcome = await agent.NextAsync(CoordinatorMessage.KindOneofCase.Welcome, TimeSpan.FromSeconds(10));

        Assert.Equal("known", agent.Id); // the registered id, though the agent asked for none
        Assert.NotNull(welcome.Welcome);
        Assert.NotNull(agent.Enrolment.SessionChallenge);
        Assert.True(Coordinator.Service<Agents.AgentRegistry>().IsConnected("known"));
    }

    [Fact]
    public async Task Enroll_ReplayedChallengeSignature_IsUnauthenticated()
    {
        using var identity = AgentIdentity.Create();
        Store.Register("replayed", identity.PublicKey, "test");
        using var channel = Channel();
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var request = await ScriptedAgent.SignedEnrolRequestAsync(client, "replayed", identity);
        var first = await client.EnrollAsync(request, deadline: DateTime.UtcNow.AddSeconds(10));

        var error = await Assert.ThrowsAsync<RpcException>(() => client.EnrollAsync(request, deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

        Assert.Equal("replayed", first.AgentId);
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("already used", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enroll_SignatureMadeForAnotherAgentId_IsUnauthenticated()
    {
        using var identity = AgentIdentity.Create();
        Store.Register("victim", identity.PublicKey, "test");
        using var channel = Channel();
        var client = new Protocol.V1.Coordinator.CoordinatorClient(channel);
        var request = await ScriptedAgent.SignedEnrolRequestAsync(client, "victim", identity, signAs: "someone-else");

        var error = await Assert.ThrowsAsync<RpcException>(() => client.EnrollAsync(request, deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("does not verify", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Session_ReplayedOrUnsignedHello_IsUnauthenticated()
    {
        using var identity = AgentIdentity.Create();
        Store.Register("hello", identity.PublicKey, "test");
        await using var agent = await ScriptedAgent.EnrollWithKeyAsync(Channel(), "hello", identity);
        await agent.ConnectAsync();
        await agent.NextAsync(CoordinatorMessage.KindOneofCase.Welcome, TimeSpan.FromSeconds(10));

        using var replay = agent.Client.Session(agent.Auth);
        await replay.RequestStream.WriteAsync(new AgentMessage { Hello = agent.SentHello });
        var replayed = await Assert.ThrowsAsync<RpcException>(() => replay.ResponseStream.MoveNext(CancellationToken.None));
        using var unsigned = agent.Client.Session(agent.Auth);
        await unsigned.RequestStream.WriteAsync(new AgentMessage { Hello = new Hello { AgentId = "hello", ProtocolVersion = ProtocolVersion.Current } });
        var missing = await Assert.ThrowsAsync<RpcException>(() => unsigned.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.Unauthenticated, replayed.StatusCode);
        Assert.Contains("already used", replayed.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
        Assert.True(Coordinator.Service<Agents.AgentRegistry>().IsConnected("hello")); // the genuine session stays open
    }

    [Fact]
    public async Task Enroll_OneTimeToken_RegistersTheKeyOnceAndIsThenUsedUp()
    {
        var (token, _) = Store.IssueToken(maxUses: 1, TimeSpan.FromHours(1), agentId: null);
        using var first = AgentIdentity.Create();
        using var second = AgentIdentity.Create();

        await using (var agent = await ScriptedAgent.EnrollWithKeyAsync(Channel(), "tok-a", first, token))
        {
            Assert.Equal("tok-a", agent.Id);
        }

        var reuse = await Assert.ThrowsAsync<RpcException>(() => ScriptedAgent.EnrollWithKeyAsync(Channel(), "tok-b", second, token));
        await using var again = await ScriptedAgent.EnrollWithKeyAsync(Channel(), "tok-a", first); // registered now: no token needed

        Assert.Equal(StatusCode.Unauthenticated, reuse.StatusCode);
        Assert.Contains("used up", reuse.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("tok-a", again.Id);
        Assert.Equal(Convert.ToBase64String(first.PublicKey), Store.FindById("tok-a")?.PublicKey);
        Assert.Equal(1, Assert.Single(Store.Current.Tokens).Uses);
        Assert.Null(Store.FindById("tok-b"));
    }

    [Fact]
    public async Task Revoke_ConnectedAgent_ClosesItsSessionAndRefusesItFromThenOn()
    {
        using var identity = AgentIdentity.Create();
        Store.Register("doomed", identity.PublicKey, "test");
        await using var agent = await ScriptedAgent.EnrollWithKeyAsync(Channel(), "doomed", identity);
        await agent.ConnectAsync();
        await agent.NextAsync(CoordinatorMessage.KindOneofCase.Welcome, TimeSpan.FromSeconds(10));

        // What an administrator runs while the coordinator is up.
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var exit = AgentsCommand.Run(["revoke", "doomed", "--file", Store.Path], output, errors);
        await agent.Closed.WaitAsync(TimeSpan.FromSeconds(10));
        var download = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = agent.Client.Download(new DownloadRequest { TransferId = "x" }, agent.Auth);
            await call.ResponseStream.MoveNext(CancellationToken.None);
        });
        var enrol = await Assert.ThrowsAsync<RpcException>(() => ScriptedAgent.EnrollWithKeyAsync(Channel(), "doomed", identity));

        Assert.Equal(0, exit);
        Assert.Equal(StatusCode.PermissionDenied, agent.EndStatus?.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, download.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, enrol.StatusCode);
        Assert.False(Coordinator.Service<Agents.AgentRegistry>().IsConnected("doomed"));
        Assert.True(Coordinator.Logs.Contains("Agent doomed was revoked"));
    }
}

/// <summary>The enrolment rate limit: over it, ResourceExhausted with a message.</summary>
public sealed class EnrolmentRateTests
{
    [Fact]
    public async Task Enroll_OverTheRateLimit_IsResourceExhausted()
    {
        var state = Directory.CreateTempSubdirectory("federated-rate-").FullName;
        try
        {
            var settings = TestCoordinator.Settings(state, rounds: 1);
            settings["Coordinator:MinAvailable"] = "50";
            settings["Coordinator:Security:EnrolmentsPerMinute"] = "1";
            settings["Coordinator:Security:EnrolmentBurst"] = "2";
            await using var coordinator = await TestCoordinator.StartAsync(settings);
            await using var a = await ScriptedAgent.EnrollAsync(coordinator.Address, "a");
            await using var b = await ScriptedAgent.EnrollAsync(coordinator.Address, "b");

            var error = await Assert.ThrowsAsync<RpcException>(() => ScriptedAgent.EnrollAsync(coordinator.Address, "c"));

            Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
            Assert.Contains("rate limit", error.Status.Detail, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }
}
