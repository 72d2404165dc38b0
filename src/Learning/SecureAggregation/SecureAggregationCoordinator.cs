using System.Numerics.Tensors;

namespace Federated.Learning.SecureAggregation;

/// <summary>The outcome of a secure-aggregation round.</summary>
/// <param name="RingSum">Σ q_u over the survivors, in Z_{2^b} (no agent's q_u was ever seen).</param>
/// <param name="Sum">The dequantised float sum of the survivors' clipped updates (with their noise when the round adds it).</param>
/// <param name="Survivors">U3: the agents whose inputs are in the sum, ascending.</param>
/// <param name="Dropped">U2 ∖ U3: agents that shared keys but are not in the sum (dropped or excluded), ascending.</param>
/// <param name="Excluded">Agents excluded for a bad signature or for shares that failed authentication, ascending.</param>
public sealed record SecureAggregationResult(uint[] RingSum, float[] Sum, int[] Survivors, int[] Dropped, int[] Excluded);

/// <summary>
/// The coordinator's side of a SecAgg+ round, transport-free: it verifies advertisements, routes the encrypted
/// shares unread, sums the masked inputs, asks the survivors for the right shares and removes the masks. It only ever
/// learns the sum. Stage methods must be called in order: <see cref="SubmitKeys"/> (each agent), <see cref="KeysFor"/>,
/// <see cref="SubmitShares"/>, <see cref="SharesFor"/>, <see cref="SubmitMaskedInput"/>,
/// <see cref="CloseMaskedInput"/>, <see cref="SubmitUnmasking"/>, <see cref="Finish"/>.
/// </summary>
public sealed class SecureAggregationCoordinator
{
    private readonly NeighbourGraph _graph;
    private readonly SecureAggregationOptions _options;
    private readonly IReadOnlyDictionary<int, byte[]> _identityKeys;
    private readonly int _threshold;
    private readonly int _length;
    private readonly Dictionary<int, KeyAdvertisement> _keys = [];
    private readonly Dictionary<int, HashSet<int>> _sentTo = [];
    private readonly Dictionary<int, List<EncryptedShare>> _inbox = [];
    private readonly Dictionary<int, uint[]> _inputs = [];
    private readonly HashSet<int> _excluded = [];
    private readonly HashSet<(int Reporter, int Sender)> _rejections = [];
    private readonly Dictionary<(int Owner, bool Seed), List<ShamirShare>> _revealed = [];
    private UnmaskingRequest? _request;

    /// <summary>
    /// A coordinator for <paramref name="round"/> over <paramref name="graph"/>, summing vectors of
    /// <paramref name="length"/> parameters; <paramref name="identityKeys"/> maps agent ids to Ed25519 public keys.
    /// </summary>
    public SecureAggregationCoordinator(long round, NeighbourGraph graph, SecureAggregationOptions options, IReadOnlyDictionary<int, byte[]> identityKeys, int length)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(identityKeys);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        Round = round;
        _graph = graph;
        _options = options;
        _identityKeys = identityKeys;
        _threshold = options.ResolveThreshold(graph.Degree);
        _length = length;
        Quantizer = options.Quantizer(graph.Agents);
        Noise = options.NoiseEncoding(graph.Agents, length);
        MinSurvivors = options.ResolveMinSurvivors(graph.Agents, graph.Degree);
    }

    /// <summary>The Skellam encoding every agent of the round uses; null when the round adds no noise.</summary>
    public SkellamEncoding? Noise { get; }

    /// <summary>The fewest survivors whose sum this coordinator unmasks.</summary>
    public int MinSurvivors { get; }

    /// <summary>The round.</summary>
    public long Round { get; }

    /// <summary>The quantiser every agent of the round uses.</summary>
    public RingQuantizer Quantizer { get; }

    /// <summary>Stage 1: accepts <paramref name="advertisement"/> if its signature holds under the agent's identity; otherwise excludes the agent and returns false.</summary>
    public bool SubmitKeys(KeyAdvertisement advertisement)
    {
        ArgumentNullException.ThrowIfNull(advertisement);
        var id = advertisement.AgentId;
        if (id < 0 || id >= _graph.Agents || _keys.ContainsKey(id) || _excluded.Contains(id))
        {
            return false;
        }

        if (!_identityKeys.TryGetValue(id, out var identity) || !advertisement.Verify(identity, Round))
        {
            _excluded.Add(id);
            return false;
        }

        _keys[id] = advertisement;
        return true;
    }

    /// <summary>Stage 1 → 2: the advertisements of <paramref name="agent"/>'s neighbours that advertised (U1).</summary>
    public IReadOnlyList<KeyAdvertisement> KeysFor(int agent) =>
        [.. _graph.Neighbours(agent).Where(_keys.ContainsKey).Select(v => _keys[v])];

    /// <summary>Stage 2: the encrypted shares <paramref name="sender"/> sends its neighbours (shares to non-neighbours or agents outside U1 are dropped).</summary>
    public void SubmitShares(int sender, IReadOnlyList<EncryptedShare> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        if (!_keys.ContainsKey(sender) || _sentTo.ContainsKey(sender))
        {
            throw new SecureAggregationException($"Agent {sender} did not advertise keys or already shared them.");
        }

        var recipients = new HashSet<int>();
        foreach (var share in shares)
        {
            if (share.Sender == sender && _keys.ContainsKey(share.Recipient) && _graph.AreNeighbours(sender, share.Recipient) && recipients.Add(share.Recipient))
            {
                if (!_inbox.TryGetValue(share.Recipient, out var inbox))
                {
                    _inbox[share.Recipient] = inbox = [];
                }

                inbox.Add(share);
            }
        }

        _sentTo[sender] = recipients;
    }

    /// <summary>Stage 2 → 3: the shares addressed to <paramref name="agent"/>.</summary>
    public IReadOnlyList<EncryptedShare> SharesFor(int agent) => _inbox.TryGetValue(agent, out var inbox) ? inbox : [];

    /// <summary>Stage 3: an agent's masked input (kept until the stage closes; senders it reports are excluded).</summary>
    public void SubmitMaskedInput(MaskedInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!_sentTo.ContainsKey(input.AgentId) || _inputs.ContainsKey(input.AgentId) || _request is not null)
        {
            throw new SecureAggregationException($"Agent {input.AgentId} did not share keys, already sent its input, or the stage is closed.");
        }

        if (input.Vector.Length != _length)
        {
            throw new SecureAggregationException($"Agent {input.AgentId} sent {input.Vector.Length} parameters, not {_length}.");
        }

        _inputs[input.AgentId] = input.Vector;
        foreach (var sender in input.RejectedSenders)
        {
            // Only a neighbour that really sent this agent shares can be reported.
            if (_sentTo.TryGetValue(sender, out var recipients) && recipients.Contains(input.AgentId))
            {
                _excluded.Add(sender);
                _rejections.Add((input.AgentId, sender));
            }
        }
    }

    /// <summary>Stage 3 → 4: closes the input stage and returns the request every survivor answers.</summary>
    public UnmaskingRequest CloseMaskedInput()
    {
        var survivors = _inputs.Keys.Where(u => !_excluded.Contains(u)).Order().ToArray();
        var dropped = _sentTo.Keys.Where(u => !survivors.Contains(u)).Order().ToArray();
        if (survivors.Length == 0)
        {
            throw new SecureAggregationException("No masked input survived.");
        }

        if (survivors.Length < MinSurvivors)
        {
            throw new SecureAggregationException($"Only {survivors.Length} masked inputs survived, fewer than the {MinSurvivors} the round accepts.");
        }

        _request = new UnmaskingRequest(survivors, dropped);
        return _request;
    }

    /// <summary>Stage 4: the shares a survivor reveals (a share it could not have received is ignored).</summary>
    public void SubmitUnmasking(UnmaskingResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (_request is null || Array.BinarySearch(_request.Survivors, response.AgentId) < 0)
        {
            throw new SecureAggregationException($"Agent {response.AgentId} is not a survivor of this round.");
        }

        foreach (var revealed in response.Shares)
        {
            var wanted = revealed.SelfMaskSeed
                ? Array.BinarySearch(_request.Survivors, revealed.Owner) >= 0
                : Array.BinarySearch(_request.Dropped, revealed.Owner) >= 0;
            if (wanted && revealed.Share.X == response.AgentId + 1
                && _sentTo.TryGetValue(revealed.Owner, out var recipients) && recipients.Contains(response.AgentId))
            {
                var key = (revealed.Owner, revealed.SelfMaskSeed);
                if (!_revealed.TryGetValue(key, out var list))
                {
                    _revealed[key] = list = [];
                }

                if (list.All(s => s.X != revealed.Share.X))
                {
                    list.Add(revealed.Share);
                }
            }
        }
    }

    /// <summary>
    /// Removes the survivors' self masks and the masks between survivors and dropped agents from the sum of the
    /// masked inputs. Throws <see cref="InsufficientSharesException"/> if a needed secret has fewer than t shares,
    /// and <see cref="SecureAggregationException"/> if a reconstructed masking key does not match its advertisement.
    /// </summary>
    public SecureAggregationResult Finish()
    {
        var request = _request ?? throw new InvalidOperationException("Close the masked-input stage first.");
        var terms = new List<MaskTerm>();
        foreach (var u in request.Survivors)
        {
            terms.Add(new MaskTerm(Reconstruct(u, selfMaskSeed: true), Negate: true));
        }

        var survivors = request.Survivors.ToHashSet();
        foreach (var v in request.Dropped)
        {
            // The survivors that masked with v: shares went both ways and v's shares did not fail at the survivor.
            var partners = _sentTo[v].Where(u => survivors.Contains(u) && _sentTo[u].Contains(v) && !_rejections.Contains((u, v))).ToList();
            if (partners.Count == 0)
            {
                continue;
            }

            var raw = Reconstruct(v, selfMaskSeed: false);
            using var key = SecAggCrypto.ImportPrivateKey(raw);
            if (!SecAggCrypto.PublicKeyOf(key).AsSpan().SequenceEqual(_keys[v].MaskingPublicKey))
            {
                throw new SecureAggregationException($"The reconstructed masking key of agent {v} does not match the one it advertised.");
            }

            foreach (var u in partners)
            {
                var seed = SecAggCrypto.PairSeed(key, _keys[u].MaskingPublicKey, Round, u, v)
                    ?? throw new SecureAggregationException($"Agent {u}'s masking key gives no agreement.");

                // u added the mask if u < v and subtracted it otherwise; undo that.
                terms.Add(new MaskTerm(seed, Negate: u < v));
            }
        }

        var sum = new uint[_length];
        foreach (var u in request.Survivors)
        {
            TensorPrimitives.Add(sum, _inputs[u], sum);
        }

        MaskExpansion.Apply(sum, terms, _options.RingBits, _options.MaskParallelism);
        var floats = new float[_length];
        if (Noise is not null)
        {
            Noise.Decode(sum, floats);
        }
        else
        {
            Quantizer.Dequantize(sum, request.Survivors.Length, floats);
        }
        return new SecureAggregationResult(sum, floats, request.Survivors, request.Dropped, [.. _excluded.Order()]);
    }

    private byte[] Reconstruct(int owner, bool selfMaskSeed)
    {
        var shares = _revealed.TryGetValue((owner, selfMaskSeed), out var list) ? list : [];
        if (shares.Count < _threshold)
        {
            throw new InsufficientSharesException(owner, selfMaskSeed ? "self-mask seed" : "masking key", shares.Count, _threshold);
        }

        return ShamirSecretSharing.Reconstruct(shares, _threshold, SecAggCrypto.SeedSize);
    }
}
