using System.Buffers.Binary;
using System.Text;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// Stage 1 (advertise keys): an agent's two X25519 public keys for one round, the masking key (pairwise masks) and
/// the encryption key (the channel its shares travel on), signed with the agent's Ed25519 identity over the round,
/// the agent id and both keys.
/// </summary>
/// <param name="AgentId">The advertising agent.</param>
/// <param name="Round">The round the keys are for.</param>
/// <param name="MaskingPublicKey">The 32-byte X25519 masking public key.</param>
/// <param name="EncryptionPublicKey">The 32-byte X25519 encryption public key.</param>
/// <param name="Signature">The Ed25519 signature of <see cref="SignedBytes"/>.</param>
public sealed record KeyAdvertisement(int AgentId, long Round, byte[] MaskingPublicKey, byte[] EncryptionPublicKey, byte[] Signature)
{
    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("federated-secagg/advertise/v1");

    /// <summary>The bytes on the wire: id, round, both keys and the signature.</summary>
    public int EncodedSize => 4 + 8 + MaskingPublicKey.Length + EncryptionPublicKey.Length + Signature.Length;

    /// <summary>The signed message: a domain string, the round, the agent id and both public keys.</summary>
    public static byte[] SignedBytes(int agentId, long round, ReadOnlySpan<byte> maskingPublicKey, ReadOnlySpan<byte> encryptionPublicKey)
    {
        var bytes = new byte[Domain.Length + 12 + maskingPublicKey.Length + encryptionPublicKey.Length];
        Domain.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(Domain.Length), round);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(Domain.Length + 8), agentId);
        maskingPublicKey.CopyTo(bytes.AsSpan(Domain.Length + 12));
        encryptionPublicKey.CopyTo(bytes.AsSpan(Domain.Length + 12 + maskingPublicKey.Length));
        return bytes;
    }

    /// <summary>Whether the signature is valid under <paramref name="identityPublicKey"/> for this round.</summary>
    public bool Verify(ReadOnlySpan<byte> identityPublicKey, long round) =>
        Round == round
        && MaskingPublicKey.Length == SecAggCrypto.PublicKeySize
        && EncryptionPublicKey.Length == SecAggCrypto.PublicKeySize
        && AgentIdentity.Verify(identityPublicKey, SignedBytes(AgentId, Round, MaskingPublicKey, EncryptionPublicKey), Signature);
}
