using Federated.Coordinator.Security;
using Federated.Learning.SecureAggregation;

namespace Federated.Coordinator.Tests.Security;

/// <summary><c>federated-coordinator agents register|list|revoke|token</c> on a temporary state directory.</summary>
public sealed class AgentsCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-agents-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Exit, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = AgentsCommand.Run([.. args, "--state-dir", _dir], output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void RegisterListRevoke_EditTheRegistryFile()
    {
        using var identity = AgentIdentity.Create();
        var key = Convert.ToBase64String(identity.PublicKey);

        var registered = Run("register", "edge-1", key);
        var listed = Run("list");
        var revoked = Run("revoke", "edge-1");
        var again = Run("revoke", "edge-1");
        var afterwards = Run("list");
        var store = new AgentKeyStore(Path.Combine(_dir, "agents.json"), TimeProvider.System);

        Assert.Equal(0, registered.Exit);
        Assert.Contains("registered agent edge-1", registered.Output, StringComparison.Ordinal);
        Assert.Equal(0, listed.Exit);
        Assert.Contains($"edge-1\tactive\t{key}", listed.Output, StringComparison.Ordinal);
        Assert.Equal(0, revoked.Exit);
        Assert.Contains("already revoked", again.Output, StringComparison.Ordinal);
        Assert.Contains("edge-1\trevoked", afterwards.Output, StringComparison.Ordinal);
        Assert.True(store.IsRevoked("edge-1", identity.PublicKey));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(store.Path));
        }
    }

    [Fact]
    public void Token_IsPrintedOnceAndOnlyItsHashIsStored()
    {
        var (exit, output, error) = Run("token", "--uses", "2", "--expires-hours", "1", "--agent", "edge-9");
        var token = output.Trim();
        var file = File.ReadAllText(Path.Combine(_dir, "agents.json"));
        var listed = Run("list");

        Assert.Equal(0, exit);
        Assert.StartsWith("fet_", token, StringComparison.Ordinal);
        Assert.Contains("2 use(s)", error, StringComparison.Ordinal);
        Assert.DoesNotContain(token, file, StringComparison.Ordinal);
        Assert.Contains(AgentKeyStore.Hash(token), file, StringComparison.Ordinal);
        Assert.Contains("0/2", listed.Output, StringComparison.Ordinal);
        Assert.Contains("edge-9\tusable", listed.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "register", "edge-1", "not-base64!" }, "is not a public key")]
    [InlineData(new[] { "register", "edge-1", "AAAA" }, "is 3 bytes")]
    [InlineData(new[] { "register", "edge 1", "AAAA" }, "is not an agent id")]
    [InlineData(new[] { "register", "edge-1" }, "Expected: agents register")]
    [InlineData(new[] { "revoke" }, "Expected: agents revoke")]
    [InlineData(new[] { "token", "--uses", "0" }, "--uses must be a whole number")]
    [InlineData(new[] { "list", "--colour", "red" }, "Unknown option --colour")]
    [InlineData(new[] { "enrol", "x" }, "Unknown agents command 'enrol'")]
    public void BadInput_ExitsWith2AndSaysWhy(string[] args, string message)
    {
        var (exit, _, error) = Run(args);

        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_TakenIdOrKey_ExitsWith2()
    {
        using var identity = AgentIdentity.Create();
        using var other = AgentIdentity.Create();
        Run("register", "edge-1", Convert.ToBase64String(identity.PublicKey));

        var sameId = Run("register", "edge-1", Convert.ToBase64String(other.PublicKey));
        var sameKey = Run("register", "edge-2", Convert.ToBase64String(identity.PublicKey));
        Run("revoke", "edge-1");
        var revokedId = Run("register", "edge-1", Convert.ToBase64String(other.PublicKey));

        Assert.Equal(2, sameId.Exit);
        Assert.Contains("already registered", sameId.Error, StringComparison.Ordinal);
        Assert.Equal(2, sameKey.Exit);
        Assert.Contains("already registered as agent 'edge-1'", sameKey.Error, StringComparison.Ordinal);
        Assert.Equal(2, revokedId.Exit);
        Assert.Contains("was revoked", revokedId.Error, StringComparison.Ordinal);
    }
}
