using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Federated.Coordinator.Security;

/// <summary>An agent an administrator registered (or a token enrolled), and whether it was revoked.</summary>
public sealed record RegisteredAgent
{
    /// <summary>The agent id.</summary>
    public required string Id { get; init; }

    /// <summary>The 32-byte raw Ed25519 public key, base64; null for an id that was only revoked.</summary>
    public string? PublicKey { get; init; }

    /// <summary>When the key was registered.</summary>
    public DateTimeOffset RegisteredAt { get; init; }

    /// <summary>How: <c>admin</c> or <c>token:&lt;token id&gt;</c>.</summary>
    public string? Source { get; init; }

    /// <summary>When the agent was revoked; null while it may enrol.</summary>
    public DateTimeOffset? RevokedAt { get; init; }
}

/// <summary>A one-time (or N-time) enrolment token. Only its SHA-256 is stored; the token itself is shown once.</summary>
public sealed record EnrolmentTokenRecord
{
    /// <summary>A short public name for listing and revoking (not the secret).</summary>
    public required string Id { get; init; }

    /// <summary>SHA-256 of the token, lowercase hex.</summary>
    public required string Sha256 { get; init; }

    /// <summary>How many enrolments the token allows.</summary>
    public int MaxUses { get; init; } = 1;

    /// <summary>How many it was used for.</summary>
    public int Uses { get; init; }

    /// <summary>When it was issued.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>After this the token is refused; null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>The only agent id that may enrol with it; null = any.</summary>
    public string? AgentId { get; init; }
}

/// <summary>The agent registry file (<c>agents.json</c>).</summary>
public sealed record AgentKeyDocument
{
    /// <summary>The format version this build writes.</summary>
    public const int CurrentVersion = 1;

    /// <summary>The format version.</summary>
    public int Version { get; init; } = CurrentVersion;

    /// <summary>Registered and revoked agents.</summary>
    public List<RegisteredAgent> Agents { get; init; } = [];

    /// <summary>Enrolment tokens.</summary>
    public List<EnrolmentTokenRecord> Tokens { get; init; } = [];
}

/// <summary>Source-generated JSON for <see cref="AgentKeyDocument"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentKeyDocument))]
internal sealed partial class AgentKeyJsonContext : JsonSerializerContext;

/// <summary>
/// The agent registry on disk: who is registered (id and public key), who is revoked, and the enrolment tokens with
/// their use counts and expiry. The coordinator and the <c>agents</c> admin command share it: every change takes an
/// exclusive lock file, reads the current file, edits it and writes it under a temporary name renamed over the old
/// one, so a reader sees the old or the new file and no change is lost. Reads are cached until the file changes.
/// </summary>
public sealed class AgentKeyStore(string path, TimeProvider time)
{
    private readonly Lock _gate = new();
    private AgentKeyDocument _cached = new();
    private (DateTime Written, long Length)? _stamp;

    /// <summary>The file (absolute).</summary>
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    /// <summary>The current document, re-read when the file changed since the last read.</summary>
    /// <exception cref="InvalidDataException">The file is not a registry this build can read.</exception>
    public AgentKeyDocument Current
    {
        get
        {
            ReloadIfChanged();
            lock (_gate)
            {
                return _cached;
            }
        }
    }

    /// <summary>Re-reads the file when its time stamp or length changed.</summary>
    /// <returns>True when the document changed.</returns>
    public bool ReloadIfChanged()
    {
        var info = new FileInfo(Path);
        (DateTime, long)? stamp = info.Exists ? (info.LastWriteTimeUtc, info.Length) : null;
        lock (_gate)
        {
            if (stamp == _stamp)
            {
                return false;
            }
        }

        var document = Read();
        lock (_gate)
        {
            _cached = document;
            _stamp = stamp;
        }

        return true;
    }

    /// <summary>The agent registered with <paramref name="publicKey"/>, or null.</summary>
    public RegisteredAgent? FindByKey(ReadOnlySpan<byte> publicKey)
    {
        var key = Convert.ToBase64String(publicKey);
        return Current.Agents.FirstOrDefault(a => string.Equals(a.PublicKey, key, StringComparison.Ordinal));
    }

    /// <summary>The agent registered (or revoked) as <paramref name="id"/>, or null.</summary>
    public RegisteredAgent? FindById(string id) => Current.Agents.FirstOrDefault(a => string.Equals(a.Id, id, StringComparison.Ordinal));

    /// <summary>True when <paramref name="id"/> or <paramref name="publicKey"/> was revoked.</summary>
    public bool IsRevoked(string id, ReadOnlySpan<byte> publicKey) =>
        FindById(id)?.RevokedAt is not null || (publicKey.Length > 0 && FindByKey(publicKey)?.RevokedAt is not null);

    /// <summary>Applies <paramref name="edit"/> to the current file under the lock and writes the result atomically when it returns true.</summary>
    /// <exception cref="IOException">The lock could not be taken within 10 seconds, or the file could not be written.</exception>
    public T Update<T>(Func<AgentKeyDocument, (AgentKeyDocument? Changed, T Result)> edit)
    {
        ArgumentNullException.ThrowIfNull(edit);
        var directory = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(directory);
        using var held = AcquireLock();
        var (changed, result) = edit(Read());
        if (changed is not null)
        {
            Write(changed);
        }

        ReloadIfChanged();
        return result;
    }

    /// <summary>Registers <paramref name="publicKey"/> as agent <paramref name="id"/>.</summary>
    /// <exception cref="ArgumentException">The id or the key is taken (or was revoked).</exception>
    public RegisteredAgent Register(string id, ReadOnlySpan<byte> publicKey, string source)
    {
        var key = Convert.ToBase64String(publicKey);
        return Update(document =>
        {
            if (document.Agents.FirstOrDefault(a => a.Id == id) is { } existing)
            {
                throw new ArgumentException(existing.RevokedAt is not null
                    ? $"Agent '{id}' was revoked on {existing.RevokedAt:u}; a revoked id is not reused: register the key under a new id."
                    : $"Agent '{id}' is already registered (key {existing.PublicKey}); revoke it first or choose another id.");
            }

            if (document.Agents.FirstOrDefault(a => a.PublicKey == key) is { } holder)
            {
                throw new ArgumentException($"This public key is already registered as agent '{holder.Id}'.");
            }

            var agent = new RegisteredAgent { Id = id, PublicKey = key, RegisteredAt = time.GetUtcNow(), Source = source };
            return (document with { Agents = [.. document.Agents, agent] }, agent);
        });
    }

    /// <summary>Revokes agent <paramref name="id"/> (an id never registered is recorded as revoked, which also bars an open-mode agent).</summary>
    /// <returns>False when it was already revoked.</returns>
    public bool Revoke(string id) => Update(document =>
    {
        var now = time.GetUtcNow();
        if (document.Agents.FirstOrDefault(a => a.Id == id) is { } existing)
        {
            if (existing.RevokedAt is not null)
            {
                return (null, false);
            }

            return (document with { Agents = document.Agents.Select(a => a.Id == id ? a with { RevokedAt = now } : a).ToList() }, true);
        }

        return (document with { Agents = [.. document.Agents, new RegisteredAgent { Id = id, RegisteredAt = now, Source = "revoked", RevokedAt = now }] }, true);
    });

    /// <summary>Issues an enrolment token; returns the secret (shown once) and its record.</summary>
    public (string Token, EnrolmentTokenRecord Record) IssueToken(int maxUses, TimeSpan? lifetime, string? agentId)
    {
        var token = "fet_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
        var now = time.GetUtcNow();
        var record = new EnrolmentTokenRecord
        {
            Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            Sha256 = Hash(token),
            MaxUses = maxUses,
            CreatedAt = now,
            ExpiresAt = lifetime is { } l ? now + l : null,
            AgentId = agentId,
        };
        Update(document => (document with { Tokens = [.. document.Tokens, record] }, 0));
        return (token, record);
    }

    /// <summary>
    /// Uses <paramref name="token"/> to register <paramref name="publicKey"/> as <paramref name="agentId"/>: the token
    /// must exist, have uses left, not be expired and (when bound to an id) name this one; the id must be free.
    /// </summary>
    /// <returns>The new registration, or null with the reason.</returns>
    /// <param name="token">The secret.</param>
    /// <param name="agentId">The id the agent asked for; empty = the token's id, or <paramref name="fallbackId"/>.</param>
    /// <param name="fallbackId">The id to use when neither the agent nor the token names one.</param>
    /// <param name="publicKey">The agent's verified public key.</param>
    public (RegisteredAgent? Agent, string? Refusal) EnrolWithToken(string token, string agentId, string fallbackId, ReadOnlySpan<byte> publicKey)
    {
        var hash = Hash(token);
        var key = Convert.ToBase64String(publicKey);
        return Update<(RegisteredAgent?, string?)>(document =>
        {
            var now = time.GetUtcNow();
            var record = document.Tokens.FirstOrDefault(t => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(t.Sha256), Encoding.ASCII.GetBytes(hash)));
            if (record is null || record.Uses >= record.MaxUses || (record.ExpiresAt is { } expires && expires <= now))
            {
                return (null, (null, "The enrolment token is unknown, used up or expired."));
            }

            var id = record.AgentId ?? (agentId.Length > 0 ? agentId : fallbackId);
            if (record.AgentId is not null && agentId.Length > 0 && agentId != record.AgentId)
            {
                return (null, (null, $"The enrolment token is for agent '{record.AgentId}', not '{agentId}'."));
            }

            if (document.Agents.Any(a => a.Id == id))
            {
                return (null, (null, $"Agent id '{id}' is already registered (or revoked); enrol with its key, or under another id."));
            }

            if (document.Agents.Any(a => a.PublicKey == key))
            {
                return (null, (null, "This public key is already registered under another id."));
            }

            var agent = new RegisteredAgent { Id = id, PublicKey = key, RegisteredAt = now, Source = $"token:{record.Id}" };
            var tokens = document.Tokens.Select(t => ReferenceEquals(t, record) ? t with { Uses = t.Uses + 1 } : t).ToList();
            return (document with { Agents = [.. document.Agents, agent], Tokens = tokens }, (agent, null));
        });
    }

    /// <summary>SHA-256 of a token, lowercase hex.</summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private AgentKeyDocument Read()
    {
        if (!File.Exists(Path))
        {
            return new AgentKeyDocument();
        }

        try
        {
            var document = JsonSerializer.Deserialize(File.ReadAllBytes(Path), AgentKeyJsonContext.Default.AgentKeyDocument)
                ?? throw new InvalidDataException($"The agent registry '{Path}' is empty.");
            if (document.Version != AgentKeyDocument.CurrentVersion)
            {
                throw new InvalidDataException($"The agent registry '{Path}' has format version {document.Version}; this build reads version {AgentKeyDocument.CurrentVersion}.");
            }

            return document;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The agent registry '{Path}' is not valid JSON: {e.Message}", e);
        }
    }

    private void Write(AgentKeyDocument document)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(document, AgentKeyJsonContext.Default.AgentKeyDocument);
        var temp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, $".{System.IO.Path.GetFileName(Path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.WriteThrough };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(temp, options))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, Path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private FileStream AcquireLock()
    {
        var lockPath = Path + ".lock";
        var deadline = time.GetUtcNow() + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (time.GetUtcNow() < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }
}
