using System.Buffers.Binary;
using System.Security.Cryptography;
using Federated.Learning.Privacy;
using NSec.Cryptography;

namespace Federated.Learning.SecureAggregation;

/// <summary>
/// One agent's side of a SecAgg+ round, transport-free: call <see cref="AdvertiseKeys"/>, <see cref="ShareKeys"/>,
/// <see cref="MaskInput"/> and <see cref="Unmask"/> in order with what the coordinator forwards. It checks every
/// neighbour's signature, never reveals both secrets of the same agent, and keeps its secrets only for the round.
/// </summary>
public sealed class SecureAggregationAgent : IDisposable
{
    private const int SecretSize = SecAggCrypto.SeedSize;

    private readonly NeighbourGraph _graph;
    private readonly SecureAggregationOptions _options;
    private readonly AgentIdentity _identity;
    private readonly ChaCha20Random _random;
    private readonly int _threshold;
    private readonly byte[] _maskingPrivate = new byte[SecretSize];
    private readonly byte[] _selfSeed = new byte[SecretSize];
    private readonly Key _maskingKey;
    private readonly Key _encryptionKey;
    private readonly Dictionary<int, KeyAdvertisement> _peers = [];
    private readonly Dictionary<int, (ShamirShare Seed, ShamirShare MaskingKey)> _held = [];
    private readonly HashSet<int> _sentTo = [];
    private HashSet<int>? _maskedWith;

    /// <summary>
    /// Agent <paramref name="agentId"/> of <paramref name="graph"/> in <paramref name="round"/>; its keys, self-mask
    /// seed and share polynomials come from <paramref name="random"/> (<see cref="ChaCha20Random.FromEntropy"/> outside simulations).
    /// </summary>
    public SecureAggregationAgent(int agentId, long round, NeighbourGraph graph, SecureAggregationOptions options, AgentIdentity identity, ChaCha20Random random)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegative(agentId);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(agentId, graph.Agents);
        AgentId = agentId;
        Round = round;
        _graph = graph;
        _options = options;
        _identity = identity;
        _random = random;
        _threshold = options.ResolveThreshold(graph.Degree);
        Span<byte> encryptionPrivate = stackalloc byte[SecretSize];
        Fill(_maskingPrivate);
        Fill(encryptionPrivate);
        Fill(_selfSeed);
        _maskingKey = SecAggCrypto.ImportPrivateKey(_maskingPrivate);
        _encryptionKey = SecAggCrypto.ImportPrivateKey(encryptionPrivate);
        CryptographicOperations.ZeroMemory(encryptionPrivate);
    }

    /// <summary>This agent's id.</summary>
    public int AgentId { get; }

    /// <summary>The round.</summary>
    public long Round { get; }

    /// <summary>Stage 1: the signed advertisement of this round's masking and encryption public keys.</summary>
    public KeyAdvertisement AdvertiseKeys()
    {
        var masking = SecAggCrypto.PublicKeyOf(_maskingKey);
        var encryption = SecAggCrypto.PublicKeyOf(_encryptionKey);
        return new KeyAdvertisement(AgentId, Round, masking, encryption, _identity.Sign(KeyAdvertisement.SignedBytes(AgentId, Round, masking, encryption)));
    }

    /// <summary>
    /// Stage 2: checks the neighbours' advertisements (<paramref name="identityKeys"/>: agent id → Ed25519 public key)
    /// and returns, for each neighbour whose signature holds, its shares of this agent's self-mask seed and masking
    /// private key, encrypted to it. Advertisements of non-neighbours, of another round or with a bad signature are
    /// ignored. Throws <see cref="SecureAggregationException"/> if fewer than t neighbours remain.
    /// </summary>
    public IReadOnlyList<EncryptedShare> ShareKeys(IReadOnlyList<KeyAdvertisement> neighbourKeys, IReadOnlyDictionary<int, byte[]> identityKeys)
    {
        ArgumentNullException.ThrowIfNull(neighbourKeys);
        ArgumentNullException.ThrowIfNull(identityKeys);
        foreach (var ad in neighbourKeys)
        {
            if (ad.AgentId != AgentId && _graph.AreNeighbours(AgentId, ad.AgentId)
                && identityKeys.TryGetValue(ad.AgentId, out var identity) && ad.Verify(identity, Round))
            {
                _peers[ad.AgentId] = ad;
            }
        }

        if (_peers.Count < _threshold)
        {
            throw new SecureAggregationException($"Agent {AgentId} has {_peers.Count} verified neighbours, fewer than the threshold {_threshold}.");
        }

        var recipients = _peers.Keys.Order().ToArray();
        var points = recipients.Select(v => v + 1).ToArray();
        var seedShares = ShamirSecretSharing.Split(_selfSeed, points, _threshold, _random);
        var keyShares = ShamirSecretSharing.Split(_maskingPrivate, points, _threshold, _random);
        var chunks = ShamirSecretSharing.Chunks(SecretSize);
        var shareSize = ShamirShare.EncodedSize(chunks);
        var plaintext = new byte[8 + (2 * shareSize)];
        var result = new List<EncryptedShare>(recipients.Length);
        for (var i = 0; i < recipients.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(plaintext, AgentId);
            BinaryPrimitives.WriteInt32LittleEndian(plaintext.AsSpan(4), recipients[i]);
            seedShares[i].WriteTo(plaintext.AsSpan(8));
            keyShares[i].WriteTo(plaintext.AsSpan(8 + shareSize));
            var ciphertext = SecAggCrypto.EncryptShare(_encryptionKey, _peers[recipients[i]].EncryptionPublicKey, Round, AgentId, recipients[i], plaintext);
            if (ciphertext is not null)
            {
                result.Add(new EncryptedShare(AgentId, recipients[i], ciphertext));
                _sentTo.Add(recipients[i]);
            }
        }

        CryptographicOperations.ZeroMemory(plaintext);
        return result;
    }

    /// <summary>
    /// Stage 3: decrypts the shares the neighbours sent (<paramref name="received"/>) and masks
    /// <paramref name="quantized"/> (from <see cref="RingQuantizer.Quantize"/>) with the self mask and a pairwise
    /// mask per neighbour that both sent this agent valid shares and received shares from it (+ towards higher ids, −
    /// towards lower). Senders whose shares fail authentication get no mask and are reported in
    /// <see cref="MaskedInput.RejectedSenders"/>.
    /// </summary>
    public MaskedInput MaskInput(ReadOnlySpan<uint> quantized, IReadOnlyList<EncryptedShare> received)
    {
        ArgumentNullException.ThrowIfNull(received);
        if (_maskedWith is not null)
        {
            throw new InvalidOperationException("The input of this round is already masked.");
        }

        var chunks = ShamirSecretSharing.Chunks(SecretSize);
        var shareSize = ShamirShare.EncodedSize(chunks);
        var rejected = new List<int>();
        _maskedWith = [];
        foreach (var share in received)
        {
            if (share.Recipient != AgentId || !_sentTo.Contains(share.Sender) || !_peers.TryGetValue(share.Sender, out var peer)
                || !_maskedWith.Add(share.Sender))
            {
                continue;
            }

            var plaintext = SecAggCrypto.DecryptShare(_encryptionKey, peer.EncryptionPublicKey, Round, share.Sender, AgentId, share.Ciphertext);
            if (plaintext is null || plaintext.Length != 8 + (2 * shareSize)
                || BinaryPrimitives.ReadInt32LittleEndian(plaintext) != share.Sender
                || BinaryPrimitives.ReadInt32LittleEndian(plaintext.AsSpan(4)) != AgentId)
            {
                // No mask with an agent whose shares fail: the coordinator excludes it, and needs no share of it for us.
                rejected.Add(share.Sender);
                _maskedWith.Remove(share.Sender);
                continue;
            }

            _held[share.Sender] = (ShamirShare.Read(plaintext.AsSpan(8), chunks), ShamirShare.Read(plaintext.AsSpan(8 + shareSize), chunks));
            CryptographicOperations.ZeroMemory(plaintext);
        }

        var terms = new List<MaskTerm>(_maskedWith.Count + 1) { new(_selfSeed, Negate: false) };
        foreach (var v in _maskedWith.Order())
        {
            var seed = SecAggCrypto.PairSeed(_maskingKey, _peers[v].MaskingPublicKey, Round, AgentId, v)
                ?? throw new SecureAggregationException($"Agent {v}'s masking key gives no agreement.");
            terms.Add(new MaskTerm(seed, Negate: v < AgentId));
        }

        var vector = quantized.ToArray();
        MaskExpansion.Apply(vector, terms, _options.RingBits, _options.MaskParallelism);
        return new MaskedInput(AgentId, vector, [.. rejected]);
    }

    /// <summary>
    /// Stage 4: for each neighbour whose shares this agent holds, the share of its self-mask seed if it survived or
    /// of its masking key if it dropped. Refuses (<see cref="SecureAggregationException"/>) a request that names an
    /// agent both ways, omits this agent, names fewer survivors than the round accepts, or leaves fewer than t of its
    /// neighbours among the survivors.
    /// </summary>
    public UnmaskingResponse Unmask(UnmaskingRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var survivors = request.Survivors.ToHashSet();
        var dropped = request.Dropped.ToHashSet();
        if (survivors.Overlaps(dropped))
        {
            throw new SecureAggregationException("The unmasking request names an agent as both survivor and dropped.");
        }

        var minSurvivors = _options.ResolveMinSurvivors(_graph.Agents, _graph.Degree);
        if (survivors.Count < minSurvivors)
        {
            throw new SecureAggregationException($"The unmasking request names {survivors.Count} survivors, fewer than the {minSurvivors} the round accepts.");
        }

        if (!survivors.Contains(AgentId))
        {
            throw new SecureAggregationException($"Agent {AgentId} is not among the survivors it is asked to unmask.");
        }

        var liveNeighbours = _graph.Neighbours(AgentId).Count(survivors.Contains);
        if (liveNeighbours < _threshold)
        {
            throw new SecureAggregationException($"Only {liveNeighbours} of agent {AgentId}'s neighbours survive, fewer than the threshold {_threshold}.");
        }

        var shares = new List<RevealedShare>();
        foreach (var (owner, held) in _held.OrderBy(p => p.Key))
        {
            if (survivors.Contains(owner))
            {
                shares.Add(new RevealedShare(owner, SelfMaskSeed: true, held.Seed));
            }
            else if (dropped.Contains(owner))
            {
                shares.Add(new RevealedShare(owner, SelfMaskSeed: false, held.MaskingKey));
            }
        }

        return new UnmaskingResponse(AgentId, shares);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_maskingPrivate);
        CryptographicOperations.ZeroMemory(_selfSeed);
        _maskingKey.Dispose();
        _encryptionKey.Dispose();
    }

    private void Fill(Span<byte> destination)
    {
        for (var i = 0; i < destination.Length; i += 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[i..], _random.NextUInt64());
        }
    }
}
