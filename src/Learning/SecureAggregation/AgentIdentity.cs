using NSec.Cryptography;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// An agent's long-term Ed25519 identity: it signs the keys the agent advertises each round, and the coordinator and
/// the other agents check those signatures against the identity public key they already know. The private key can be
/// exported (32 raw bytes) so that the agent service can persist it.
/// </summary>
public sealed class AgentIdentity : IDisposable
{
    /// <summary>The length of an Ed25519 signature in bytes.</summary>
    public const int SignatureSize = 64;

    private readonly Key _key;

    private AgentIdentity(Key key)
    {
        _key = key;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>The 32-byte raw Ed25519 public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>A fresh identity from the operating system's generator.</summary>
    public static AgentIdentity Create() =>
        new(Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>The identity whose private key (32 raw bytes, as <see cref="ExportPrivateKey"/> gives it) is <paramref name="privateKey"/>.</summary>
    public static AgentIdentity FromPrivateKey(ReadOnlySpan<byte> privateKey) =>
        new(Key.Import(SignatureAlgorithm.Ed25519, privateKey, KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>The 32-byte raw private key, for persistence; keep it secret.</summary>
    public byte[] ExportPrivateKey() => _key.Export(KeyBlobFormat.RawPrivateKey);

    /// <summary>The Ed25519 signature of <paramref name="data"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => SignatureAlgorithm.Ed25519.Sign(_key, data);

    /// <summary>Whether <paramref name="signature"/> is a valid signature of <paramref name="data"/> under <paramref name="publicKey"/> (false for malformed keys).</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        NSec.Cryptography.PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key)
        && key is not null
        && SignatureAlgorithm.Ed25519.Verify(key, data, signature);

    /// <inheritdoc/>
    public void Dispose() => _key.Dispose();
}
