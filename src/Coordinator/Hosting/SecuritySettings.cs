namespace Federated.Coordinator.Hosting;

/// <summary>
/// Who may enrol, how the transport is protected and the service's limits (the <c>Coordinator:Security</c> section).
/// The defaults are the safe ones: only registered keys or one-time tokens enrol, and plaintext is refused, so a
/// coordinator needs <see cref="TlsSettings.CertificatePath"/> unless plaintext is explicitly allowed.
/// </summary>
public sealed class SecuritySettings
{
    /// <summary>Only agents whose public key is registered (or that present a one-time enrolment token) enrol.</summary>
    public const string KeysMode = "keys";

    /// <summary>Any agent enrols; a key presented is pinned to its agent id for the coordinator's lifetime, and keyless agents are accepted.</summary>
    public const string OpenMode = "open";

    /// <summary><c>keys</c> (default) or <c>open</c> (simulations and trusted networks).</summary>
    public string Mode { get; set; } = KeysMode;

    /// <summary>
    /// Unencrypted HTTP/2: <c>refuse</c> (default: every call must arrive over TLS), <c>loopback</c> (plaintext only
    /// from 127.0.0.1 / ::1, for simulations on one machine) or <c>allow</c> (any peer: a trusted network only).
    /// </summary>
    public string Plaintext { get; set; } = "refuse";

    /// <summary>The agent registry (keys, revocations, enrolment tokens), relative to <see cref="CoordinatorOptions.StateDirectory"/>.</summary>
    public string AgentsFile { get; set; } = "agents.json";

    /// <summary>Seconds a challenge nonce stays valid.</summary>
    public double ChallengeSeconds { get; set; } = 60;

    /// <summary>Most challenges outstanding at once; beyond it GetChallenge answers ResourceExhausted.</summary>
    public int MaxPendingChallenges { get; set; } = 10_000;

    /// <summary>How often the agent registry file is checked for changes (revocations close live sessions).</summary>
    public double ReloadSeconds { get; set; } = 2;

    /// <summary>Enrolments accepted per minute across all agents (a token bucket); 0 = unlimited.</summary>
    public double EnrolmentsPerMinute { get; set; } = 600;

    /// <summary>Enrolments that may arrive at once (the bucket's size); 0 = <see cref="EnrolmentsPerMinute"/>.</summary>
    public int EnrolmentBurst { get; set; }

    /// <summary>Concurrent HTTP/2 streams per connection (Kestrel's <c>MaxStreamsPerConnection</c>).</summary>
    public int MaxConcurrentStreams { get; set; } = 100;

    /// <summary>Concurrent connections (Kestrel's <c>MaxConcurrentConnections</c>); 0 = unlimited.</summary>
    public long MaxConnections { get; set; }

    /// <summary>Map gRPC server reflection (<c>grpc.reflection.v1alpha.ServerReflection</c>), so tools such as grpcurl list the services.</summary>
    public bool Reflection { get; set; } = true;

    /// <summary>TLS on Kestrel's HTTPS endpoints, optionally mutual.</summary>
    public TlsSettings Tls { get; set; } = new();

    /// <summary>True in <c>open</c> mode.</summary>
    public bool IsOpen => string.Equals(Mode?.Trim(), OpenMode, StringComparison.OrdinalIgnoreCase);

    /// <summary>What is wrong with these settings, one sentence per problem naming the key; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        const string S = "Coordinator:Security:";
        var errors = new List<string>();
        if (Mode?.Trim().ToLowerInvariant() is not (KeysMode or OpenMode))
        {
            errors.Add($"{S}Mode must be keys (registered keys or one-time tokens) or open (any agent), not '{Mode}'.");
        }

        if (Plaintext?.Trim().ToLowerInvariant() is not ("refuse" or "loopback" or "allow"))
        {
            errors.Add($"{S}Plaintext must be refuse, loopback or allow, not '{Plaintext}'.");
        }
        else if (PlaintextPolicy == PlaintextPolicy.Refuse && string.IsNullOrWhiteSpace(Tls?.CertificatePath))
        {
            errors.Add($"{S}Tls:CertificatePath is required while {S}Plaintext is refuse (the default): give the coordinator a certificate, " +
                $"or set {S}Plaintext to loopback (simulations on one machine) or allow (a trusted network).");
        }

        if (string.IsNullOrWhiteSpace(AgentsFile))
        {
            errors.Add($"{S}AgentsFile must name a file (default agents.json under Coordinator:StateDirectory).");
        }

        if (!(ChallengeSeconds is >= 1 and <= 3600))
        {
            errors.Add($"{S}ChallengeSeconds must be between 1 and 3600, not {ChallengeSeconds}.");
        }

        if (MaxPendingChallenges is < 1 or > 10_000_000)
        {
            errors.Add($"{S}MaxPendingChallenges must be between 1 and 10000000, not {MaxPendingChallenges}.");
        }

        if (!(ReloadSeconds is >= 0.05 and <= 3600))
        {
            errors.Add($"{S}ReloadSeconds must be between 0.05 and 3600, not {ReloadSeconds}.");
        }

        if (!(EnrolmentsPerMinute is >= 0 and <= 1e9))
        {
            errors.Add($"{S}EnrolmentsPerMinute must be 0 (unlimited) or a positive rate, not {EnrolmentsPerMinute}.");
        }

        if (EnrolmentBurst is < 0 or > 1_000_000_000)
        {
            errors.Add($"{S}EnrolmentBurst must be 0 (= EnrolmentsPerMinute) or positive, not {EnrolmentBurst}.");
        }

        if (MaxConcurrentStreams is < 1 or > 100_000)
        {
            errors.Add($"{S}MaxConcurrentStreams must be between 1 and 100000, not {MaxConcurrentStreams}.");
        }

        if (MaxConnections < 0)
        {
            errors.Add($"{S}MaxConnections must be 0 (unlimited) or positive, not {MaxConnections}.");
        }

        if (Tls is null)
        {
            errors.Add($"{S}Tls must be a section.");
            return errors;
        }

        Check(errors, $"{S}Tls:CertificatePath", Tls.CertificatePath);
        Check(errors, $"{S}Tls:KeyPath", Tls.KeyPath);
        Check(errors, $"{S}Tls:ClientCaPath", Tls.ClientCaPath);
        if (string.IsNullOrWhiteSpace(Tls.CertificatePath) && (!string.IsNullOrWhiteSpace(Tls.KeyPath) || !string.IsNullOrWhiteSpace(Tls.ClientCaPath)))
        {
            errors.Add($"{S}Tls:KeyPath and {S}Tls:ClientCaPath need {S}Tls:CertificatePath.");
        }

        return errors;
    }

    /// <summary>The parsed <see cref="Plaintext"/> (valid after validation).</summary>
    public PlaintextPolicy PlaintextPolicy => Plaintext?.Trim().ToLowerInvariant() switch
    {
        "loopback" => PlaintextPolicy.Loopback,
        "allow" => PlaintextPolicy.Allow,
        _ => PlaintextPolicy.Refuse,
    };

    private static void Check(List<string> errors, string key, string? path)
    {
        if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path))
        {
            errors.Add($"{key} '{path}' does not exist.");
        }
    }
}

/// <summary>Which unencrypted calls the coordinator serves.</summary>
public enum PlaintextPolicy
{
    /// <summary>None: every call must arrive over TLS.</summary>
    Refuse,

    /// <summary>Only from loopback peers.</summary>
    Loopback,

    /// <summary>From any peer.</summary>
    Allow,
}

/// <summary>TLS for Kestrel (the <c>Coordinator:Security:Tls</c> section).</summary>
public sealed class TlsSettings
{
    /// <summary>The server certificate: a PEM file (with <see cref="KeyPath"/>, or with the key inside) or a PKCS#12 (.pfx/.p12) file.</summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>The PEM private key of <see cref="CertificatePath"/>; empty when the key is in the certificate file.</summary>
    public string KeyPath { get; set; } = "";

    /// <summary>The password of an encrypted key or PKCS#12 file; empty for none.</summary>
    public string Password { get; set; } = "";

    /// <summary>
    /// Mutual TLS: a PEM file of the certificate authorities whose client certificates are accepted; every connection
    /// must then present a client certificate that chains to one of them. Empty = no client certificates.
    /// </summary>
    public string ClientCaPath { get; set; } = "";
}
