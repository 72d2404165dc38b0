namespace Federated.Learning.SecureAggregation;

/// <summary>
/// Stage 2 (share keys): the shares of one agent's self-mask seed and masking private key meant for one neighbour,
/// encrypted with ChaCha20-Poly1305 under a key only the two of them can derive; the coordinator routes it unread.
/// </summary>
/// <param name="Sender">The agent whose secrets are shared.</param>
/// <param name="Recipient">The neighbour that holds the shares.</param>
/// <param name="Ciphertext">The AEAD ciphertext and its 16-byte tag.</param>
public sealed record EncryptedShare(int Sender, int Recipient, byte[] Ciphertext)
{
    /// <summary>The bytes on the wire: both ids and the ciphertext.</summary>
    public int EncodedSize => 8 + Ciphertext.Length;
}
