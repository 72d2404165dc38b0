using System.Buffers.Binary;
using System.Text;
using NSec.Cryptography;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// The key agreement and encryption of secure aggregation: X25519 agreements, HKDF-SHA256 to 32-byte keys bound to
/// a purpose, the round and the two agents, and ChaCha20-Poly1305 for the shares.
/// </summary>
internal static class SecAggCrypto
{
    /// <summary>The X25519 public and private key length in bytes.</summary>
    public const int PublicKeySize = 32;

    /// <summary>The length of derived seeds and keys in bytes.</summary>
    public const int SeedSize = 32;

    private static readonly byte[] MaskPurpose = Encoding.ASCII.GetBytes("federated-secagg/pair-mask/v1");
    private static readonly byte[] SharePurpose = Encoding.ASCII.GetBytes("federated-secagg/share-key/v1");
    private static readonly byte[] ShareData = Encoding.ASCII.GetBytes("federated-secagg/share/v1");
    private static readonly byte[] Nonce = new byte[12];

    /// <summary>An X25519 private key from 32 raw bytes (any 32 bytes are a valid, clamped, key).</summary>
    public static Key ImportPrivateKey(ReadOnlySpan<byte> raw) =>
        Key.Import(KeyAgreementAlgorithm.X25519, raw, KeyBlobFormat.RawPrivateKey);

    /// <summary>The raw public key of an X25519 private key.</summary>
    public static byte[] PublicKeyOf(Key key) => key.PublicKey.Export(KeyBlobFormat.RawPublicKey);

    /// <summary>
    /// The pairwise mask seed of agents <paramref name="a"/> and <paramref name="b"/> in <paramref name="round"/>:
    /// HKDF-SHA256 of their X25519 agreement, bound to the unordered pair; null if the peer key is invalid.
    /// </summary>
    public static byte[]? PairSeed(Key own, ReadOnlySpan<byte> peerPublicKey, long round, int a, int b) =>
        Derive(own, peerPublicKey, MaskPurpose, round, Math.Min(a, b), Math.Max(a, b));

    /// <summary>Encrypts <paramref name="plaintext"/> from <paramref name="sender"/> to <paramref name="recipient"/>; null if the peer key is invalid.</summary>
    public static byte[]? EncryptShare(Key ownEncryptionKey, ReadOnlySpan<byte> recipientPublicKey, long round, int sender, int recipient, ReadOnlySpan<byte> plaintext)
    {
        using var key = ShareKey(ownEncryptionKey, recipientPublicKey, round, sender, recipient);
        return key is null
            ? null
            : AeadAlgorithm.ChaCha20Poly1305.Encrypt(key, Nonce, AssociatedData(round, sender, recipient), plaintext);
    }

    /// <summary>Decrypts a share sent to <paramref name="recipient"/>; null if the key is invalid or the ciphertext, ids or round were tampered with.</summary>
    public static byte[]? DecryptShare(Key ownEncryptionKey, ReadOnlySpan<byte> senderPublicKey, long round, int sender, int recipient, ReadOnlySpan<byte> ciphertext)
    {
        using var key = ShareKey(ownEncryptionKey, senderPublicKey, round, sender, recipient);
        return key is null ? null : AeadAlgorithm.ChaCha20Poly1305.Decrypt(key, Nonce, AssociatedData(round, sender, recipient), ciphertext);
    }

    /// <summary>The one-message key for the direction sender → recipient (so the all-zero <see cref="Nonce"/> is never reused).</summary>
    private static Key? ShareKey(Key own, ReadOnlySpan<byte> peerPublicKey, long round, int sender, int recipient)
    {
        var bytes = Derive(own, peerPublicKey, SharePurpose, round, sender, recipient);
        if (bytes is null)
        {
            return null;
        }

        var key = Key.Import(AeadAlgorithm.ChaCha20Poly1305, bytes, KeyBlobFormat.RawSymmetricKey);
        Array.Clear(bytes);
        return key;
    }

    /// <summary>The AEAD associated data: a domain string, the round, the sender and the recipient.</summary>
    private static byte[] AssociatedData(long round, int sender, int recipient) => Info(ShareData, round, sender, recipient);

    private static byte[]? Derive(Key own, ReadOnlySpan<byte> peerPublicKey, byte[] purpose, long round, int first, int second)
    {
        if (!PublicKey.TryImport(KeyAgreementAlgorithm.X25519, peerPublicKey, KeyBlobFormat.RawPublicKey, out var peer) || peer is null)
        {
            return null;
        }

        using var secret = KeyAgreementAlgorithm.X25519.Agree(own, peer);
        if (secret is null)
        {
            return null;
        }

        return KeyDerivationAlgorithm.HkdfSha256.DeriveBytes(secret, ReadOnlySpan<byte>.Empty, Info(purpose, round, first, second), SeedSize);
    }

    private static byte[] Info(byte[] purpose, long round, int first, int second)
    {
        var info = new byte[purpose.Length + 16];
        purpose.CopyTo(info, 0);
        BinaryPrimitives.WriteInt64LittleEndian(info.AsSpan(purpose.Length), round);
        BinaryPrimitives.WriteInt32LittleEndian(info.AsSpan(purpose.Length + 8), first);
        BinaryPrimitives.WriteInt32LittleEndian(info.AsSpan(purpose.Length + 12), second);
        return info;
    }
}
