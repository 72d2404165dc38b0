using System.Buffers.Binary;
using System.Text;

namespace Federated.Protocol.Identity;

/// <summary>
/// The bytes an agent signs to answer a coordinator's challenge, built the same way on both sides. A signature is
/// bound to its purpose (a domain-separation prefix), the coordinator that issued the nonce, the agent id, the nonce,
/// its expiry and the agent's public key, so that it cannot be reused for another purpose, coordinator, agent or key.
/// </summary>
public static class ChallengeSigning
{
    /// <summary>The purpose of the challenge signed in <c>EnrollRequest</c>.</summary>
    public const string EnrolPurpose = "enrol";

    /// <summary>The purpose of the challenge signed in a session's <c>Hello</c>.</summary>
    public const string SessionPurpose = "session";

    /// <summary>The length of a challenge nonce in bytes.</summary>
    public const int NonceSize = 32;

    private const string Prefix = "federated.v1 challenge\0";

    /// <summary>The bytes to sign (or verify) for one challenge.</summary>
    public static byte[] Payload(string purpose, string coordinatorId, string agentId, ReadOnlySpan<byte> nonce, long expiresUnixMs, ReadOnlySpan<byte> publicKey)
    {
        ArgumentNullException.ThrowIfNull(purpose);
        ArgumentNullException.ThrowIfNull(coordinatorId);
        ArgumentNullException.ThrowIfNull(agentId);
        using var buffer = new MemoryStream();
        Write(buffer, Encoding.UTF8.GetBytes(Prefix));
        Field(buffer, Encoding.UTF8.GetBytes(purpose));
        Field(buffer, Encoding.UTF8.GetBytes(coordinatorId));
        Field(buffer, Encoding.UTF8.GetBytes(agentId));
        Field(buffer, nonce);
        Span<byte> expiry = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(expiry, expiresUnixMs);
        Write(buffer, expiry);
        Field(buffer, publicKey);
        return buffer.ToArray();
    }

    // Every variable-length field is length-prefixed, so no two field lists give the same bytes.
    private static void Field(MemoryStream buffer, ReadOnlySpan<byte> value)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, value.Length);
        Write(buffer, length);
        Write(buffer, value);
    }

    private static void Write(MemoryStream buffer, ReadOnlySpan<byte> bytes) => buffer.Write(bytes);
}
