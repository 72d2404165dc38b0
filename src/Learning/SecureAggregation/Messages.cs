namespace Federated.Learning.SecureAggregation;

/// <summary>Stage 3 (masked input): an agent's masked ring vector and the neighbours whose shares failed to decrypt.</summary>
/// <param name="AgentId">The sending agent.</param>
/// <param name="Vector">y = q + Σ ± pairwise masks + self mask, in Z_{2^b}.</param>
/// <param name="RejectedSenders">Neighbours whose encrypted shares failed authentication; the coordinator excludes them.</param>
public sealed record MaskedInput(int AgentId, uint[] Vector, int[] RejectedSenders)
{
    /// <summary>The bytes on the wire with the vector packed at <paramref name="ringBits"/> bits.</summary>
    public long EncodedSize(int ringBits) => 8 + (((Vector.LongLength * ringBits) + 7) / 8) + (4L * RejectedSenders.Length);
}

/// <summary>Stage 4 (unmasking) request: which agents' inputs are in the sum (reveal their self-mask seed shares) and which dropped (reveal their masking-key shares).</summary>
/// <param name="Survivors">U3: agents whose masked input is summed.</param>
/// <param name="Dropped">U2 ∖ U3: agents that shared keys but whose input is not summed.</param>
public sealed record UnmaskingRequest(int[] Survivors, int[] Dropped);

/// <summary>One share an agent reveals in stage 4.</summary>
/// <param name="Owner">The agent whose secret this is a share of.</param>
/// <param name="SelfMaskSeed">True for a share of the owner's self-mask seed, false for its masking private key.</param>
/// <param name="Share">The share (its x is the revealing agent's id + 1).</param>
public sealed record RevealedShare(int Owner, bool SelfMaskSeed, ShamirShare Share);

/// <summary>Stage 4 (unmasking) response.</summary>
/// <param name="AgentId">The responding agent.</param>
/// <param name="Shares">The shares it reveals.</param>
public sealed record UnmaskingResponse(int AgentId, IReadOnlyList<RevealedShare> Shares)
{
    /// <summary>The bytes on the wire: the id, and per share the owner, a flag and the share.</summary>
    public long EncodedSize => 4 + Shares.Sum(s => 5L + ShamirShare.EncodedSize(s.Share.Values.Length));
}
