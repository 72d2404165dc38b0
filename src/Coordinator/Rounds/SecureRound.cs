using System.Globalization;
using System.Security.Cryptography;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Transfers;
using Federated.Learning.Privacy;
using Federated.Learning.Robustness;
using Federated.Learning.SecureAggregation;
using Federated.Learning.Strategies;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;

namespace Federated.Coordinator.Rounds;

/// <summary>What a secure round gives the round loop.</summary>
/// <param name="Aggregate">The example-weighted mean delta of the survivors as one update (weight Σ n_u); null when the round failed.</param>
/// <param name="Survivors">Agents whose masked inputs are in the sum (0 when the round failed).</param>
/// <param name="FailureReason">Why the round failed; null when it completed.</param>
/// <param name="SlowestTrain">The slowest survivor's training seconds.</param>
/// <param name="Losses">The survivors' training losses and example counts.</param>
/// <param name="Metrics">Figures for the round's metrics row (<c>secagg_*</c>).</param>
internal sealed record SecureRoundOutcome(ClientUpdate? Aggregate, int Survivors, string? FailureReason, double SlowestTrain, IReadOnlyList<(double Loss, long Examples)> Losses, IReadOnlyDictionary<string, string> Metrics)
{
    /// <summary>
    /// The privacy ledger entry of what the round released when it added distributed noise and unmasked at least one
    /// (bucket) sum, even if the round then failed; null otherwise.
    /// </summary>
    public PrivacyLedgerEntry? Released { get; init; }
}

/// <summary>
/// The four SecAgg+ stages of one round over the agents' sessions, driven by the round loop's events: after training
/// each agent advertises its keys (checked against the Ed25519 key it enrolled with); the coordinator forwards each
/// agent its neighbours' advertisements, routes the encrypted shares unread, collects the masked inputs through the
/// chunked uploads, asks the survivors for the shares that remove the masks, and hands the round loop only the sum.
/// Each stage ends when every agent still in the round has answered or at its deadline; an agent that has not answered
/// by then (or failed, or disconnected) is a dropout.
/// <para>
/// With <see cref="SecureAggregationSettings.BucketSize"/> the agents are split into random buckets, each an independent
/// SecAgg+ instance (its own indices, graph, threshold and minimum of survivors); a bucket that cannot be unmasked is
/// dropped, and the round completes when enough buckets are, with <see cref="SecureAggregationSettings.BucketAggregator"/>
/// across the bucket means. With noise, every agent adds Skellam noise (<see cref="SkellamEncoding"/>) and weighs 1.
/// </para>
/// </summary>
internal sealed partial class SecureRound
{
    private readonly SecureAggregationSettings _settings;
    private readonly AgentRegistry _registry;
    private readonly TransferHub _transfers;
    private readonly RoundEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _round;
    private readonly int _length;
    private readonly string _fingerprint;
    private readonly string[] _agents;
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Bucket> _bucketOf = new(StringComparer.Ordinal);
    private readonly List<Bucket> _buckets = [];
    private readonly double _weightScale;
    private readonly IRobustAggregator? _aggregator;
    private readonly string? _setupError;

    /// <summary>A secure round <paramref name="round"/> over the agents <paramref name="selected"/> (their order gives their indices).</summary>
    public SecureRound(SecureAggregationSettings settings, AgentRegistry registry, TransferHub transfers, RoundEvents events, TimeProvider time, ILogger logger,
        int round, IReadOnlyList<string> selected, int length, string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(selected);
        _settings = settings;
        _registry = registry;
        _transfers = transfers;
        _events = events;
        _time = time;
        _logger = logger;
        _round = round;
        _length = length;
        _fingerprint = fingerprint;
        _agents = [.. selected];
        for (var i = 0; i < _agents.Length; i++)
        {
            _index[_agents[i]] = i;
        }

        var examples = _agents.Select(a => registry.Find(a)?.Capabilities.NumExamples ?? 0).Where(n => n > 0).ToList();
        _weightScale = examples.Count > 0 ? examples.Average() : 1;
        if (_agents.Length < 2)
        {
            _setupError = $"secure aggregation needs at least 2 agents, {_agents.Length} asked";
            return;
        }

        try
        {
            // A fresh secret permutation every round: nobody can choose whose bucket they land in.
            var draw = SecureBuckets.Draw(_agents.Length, settings.BucketSize, ChaCha20Random.FromEntropy());
            foreach (var members in draw)
            {
                var bucket = new Bucket(_buckets.Count, [.. members.Select(i => _agents[i])], settings, length);
                _buckets.Add(bucket);
                foreach (var agentId in bucket.Agents)
                {
                    _bucketOf[agentId] = bucket;
                }
            }

            _aggregator = _buckets.Count > 1 ? RobustAggregators.Parse(settings.BucketAggregator) : null;
        }
        catch (ArgumentException e)
        {
            _setupError = $"secure aggregation cannot run with {_agents.Length} agents{(settings.BucketSize > 0 ? $" in buckets of {settings.BucketSize}" : "")}: {e.Message}";
            _buckets.Clear();
        }
    }

    /// <summary>The round's neighbour graph (of the first bucket; null when the round cannot run).</summary>
    public NeighbourGraph? Graph => _buckets.Count > 0 ? _buckets[0].Graph : null;

    /// <summary>The round's buckets' agents (one bucket without bucketing; none when the round cannot run).</summary>
    public IReadOnlyList<IReadOnlyList<string>> Buckets => [.. _buckets.Select(b => (IReadOnlyList<string>)b.Agents)];

    private bool Noisy => _settings.Noise.Enabled;

    /// <summary>What agent <paramref name="agentId"/> needs to take part, sent with its train task.</summary>
    public SecAggSetup SetupFor(string agentId)
    {
        var setup = new SecAggSetup
        {
            AgentIndex = _index[agentId],
            Agents = _agents.Length,
            RingBits = _settings.RingBits,
            ClipRange = _settings.ClipRange,
            StochasticRounding = _settings.StochasticRounding,
            WeightScale = _weightScale,
            NoiseMultiplier = _settings.Noise.Multiplier,
            L2Clip = _settings.Noise.L2Clip,
        };
        if (_bucketOf.TryGetValue(agentId, out var bucket))
        {
            setup.AgentIndex = bucket.Index[agentId];
            setup.Agents = bucket.Agents.Length;
            setup.GraphSeed = ByteString.CopyFrom(bucket.GraphSeed);
            setup.Degree = bucket.Graph.Degree;
            setup.Threshold = bucket.Options.ResolveThreshold(bucket.Graph.Degree);
            setup.MinSurvivors = bucket.Options.ResolveMinSurvivors(bucket.Agents.Length, bucket.Graph.Degree);
        }

        return setup;
    }

    /// <summary>
    /// Runs the stages from the train tasks (already sent; <paramref name="pending"/>: agent → task id) to the unmasked
    /// sum. Agents that drop out are added to <paramref name="failures"/>; <paramref name="trainSeconds"/> bounds
    /// training plus the key advertisement. Results of other rounds go to <paramref name="dropLate"/>; agents that
    /// advertised (so hold the round's model) to <paramref name="delivered"/>.
    /// </summary>
    public async Task<SecureRoundOutcome> RunAsync(IReadOnlyDictionary<string, string> pending, List<ClientFailure> failures, double trainSeconds, Action<ResultReceived> dropLate,
        Action<string> delivered, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(delivered);
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(failures);
        ArgumentNullException.ThrowIfNull(dropLate);
        var metrics = new Dictionary<string, string>(StringComparer.Ordinal);
        if (_setupError is not null || _buckets.Count == 0)
        {
            return Failed(_setupError ?? "secure aggregation could not be set up", metrics);
        }

        metrics["secagg_buckets"] = Inv(_buckets.Count);
        foreach (var bucket in _buckets)
        {
            foreach (var (agentId, index) in bucket.Index)
            {
                if (_registry.Find(agentId)?.PublicKey is { } key)
                {
                    bucket.Identities[index] = key;
                }
            }

            bucket.Coordinator = new SecureAggregationCoordinator(_round, bucket.Graph, bucket.Options, bucket.Identities, _length);
        }

        if (_buckets[0].Coordinator!.Noise is { } encoding)
        {
            metrics["secagg_noise_scale"] = Inv(encoding.Scale, "G6");
            metrics["secagg_noise_agent_variance"] = Inv(encoding.AgentVariance, "G6");
            metrics["secagg_min_survivors"] = Inv(encoding.MinSurvivors);
        }

        var stage = new Stage(this, pending, failures, dropLate);

        // Stage 0 + 1: training, then the signed key advertisements.
        var advertised = await stage.RunAsync("advertise keys", [.. pending.Keys], trainSeconds, SecAggReply.StageOneofCase.Keys, (agentId, reply) =>
        {
            var bucket = _bucketOf[agentId];
            var keys = reply.Keys;
            var ad = new KeyAdvertisement(keys.AgentIndex, _round, keys.MaskingPublicKey.ToByteArray(), keys.EncryptionPublicKey.ToByteArray(), keys.Signature.ToByteArray());
            if (keys.AgentIndex != bucket.Index[agentId] || !bucket.Coordinator!.SubmitKeys(ad))
            {
                var reason = bucket.Identities.ContainsKey(bucket.Index[agentId]) ? "its key advertisement's signature does not verify under its enrolled identity key" : "it has no enrolled identity key to verify its key advertisement";
                LogExcluded(_logger, _round, agentId, reason);
                return reason;
            }

            // It trained on this round's model: it holds it (the downlink codec may send it a delta next time).
            delivered(agentId);
            return null;
        }, stoppingToken).ConfigureAwait(false);
        metrics["secagg_advertised"] = Inv(advertised.Count);

        // Stage 2: each agent gets its neighbours' advertisements and answers with encrypted shares.
        foreach (var agentId in advertised)
        {
            var bucket = _bucketOf[agentId];
            var request = new SecAggShareKeys();
            foreach (var ad in bucket.Coordinator!.KeysFor(bucket.Index[agentId]))
            {
                request.Neighbours.Add(new SecAggKeys
                {
                    AgentIndex = ad.AgentId,
                    MaskingPublicKey = ByteString.CopyFrom(ad.MaskingPublicKey),
                    EncryptionPublicKey = ByteString.CopyFrom(ad.EncryptionPublicKey),
                    Signature = ByteString.CopyFrom(ad.Signature),
                    IdentityPublicKey = ByteString.CopyFrom(bucket.Identities[ad.AgentId]),
                });
            }

            stage.Send(agentId, new SecAggStage { ShareKeys = request });
        }

        var shared = await stage.RunAsync("share keys", advertised, _settings.ShareKeysSeconds, SecAggReply.StageOneofCase.Shares, (agentId, reply) =>
        {
            var bucket = _bucketOf[agentId];
            var shares = reply.Shares.Shares.Select(s => new EncryptedShare(s.Sender, s.Recipient, s.Ciphertext.ToByteArray())).ToList();
            bucket.Coordinator!.SubmitShares(bucket.Index[agentId], shares);
            return null;
        }, stoppingToken).ConfigureAwait(false);

        // Stage 3: each agent gets the shares addressed to it and uploads its masked input.
        foreach (var agentId in shared)
        {
            var bucket = _bucketOf[agentId];
            var request = new SecAggMaskInput();
            foreach (var share in bucket.Coordinator!.SharesFor(bucket.Index[agentId]))
            {
                request.Shares.Add(new SecAggShare { Sender = share.Sender, Recipient = share.Recipient, Ciphertext = ByteString.CopyFrom(share.Ciphertext) });
            }

            stage.Send(agentId, new SecAggStage { MaskInput = request });
        }

        var weights = new Dictionary<string, (long Examples, long Steps, double TrainSeconds, double? Loss)>(StringComparer.Ordinal);
        var masked = await stage.RunAsync("masked input", shared, _settings.MaskedInputSeconds, SecAggReply.StageOneofCase.MaskedInput, (agentId, reply) =>
        {
            var bucket = _bucketOf[agentId];
            var input = reply.MaskedInput;
            if (input.NumExamples <= 0)
            {
                return "its masked input names no examples";
            }

            var payload = PayloadCodec.Parse(_transfers.TakeCompleted(agentId, input.UploadTransferId), _fingerprint);
            var vector = PayloadCodec.ReadRing(payload, PayloadCodec.ModelTensor, _length);
            bucket.Coordinator!.SubmitMaskedInput(new MaskedInput(bucket.Index[agentId], vector, [.. input.RejectedSenders]));
            weights[agentId] = (input.NumExamples, input.LocalSteps, input.Metrics.GetValueOrDefault("train_seconds"),
                input.Metrics.TryGetValue("train_loss", out var loss) ? loss : null);
            return null;
        }, stoppingToken).ConfigureAwait(false);

        // Stage 4: in every bucket, the survivors reveal the shares that remove the masks.
        var unmaskRequests = new Dictionary<Bucket, SecAggUnmask>();
        var (closedSurvivors, closedDropped) = (0, 0);
        foreach (var bucket in _buckets)
        {
            UnmaskingRequest unmasking;
            try
            {
                unmasking = bucket.Coordinator!.CloseMaskedInput();
            }
            catch (SecureAggregationException e)
            {
                bucket.Fail(e.Message);
                continue;
            }

            closedSurvivors += unmasking.Survivors.Length;
            closedDropped += unmasking.Dropped.Length;
            metrics["secagg_survivors"] = Inv(closedSurvivors);
            metrics["secagg_dropped"] = Inv(closedDropped);
            var inSum = unmasking.Survivors.Select(i => bucket.Agents[i]).ToHashSet(StringComparer.Ordinal);
            foreach (var excluded in masked.Where(a => _bucketOf[a] == bucket && !inSum.Contains(a)))
            {
                stage.Drop(excluded, "excluded: a neighbour reported its encrypted shares as forged");
            }

            var threshold = bucket.Options.ResolveThreshold(bucket.Graph.Degree);
            var survivorSet = unmasking.Survivors.ToHashSet();
            var thin = unmasking.Survivors.FirstOrDefault(u => bucket.Graph.Neighbours(u).Count(survivorSet.Contains) < threshold, -1);
            if (thin >= 0)
            {
                bucket.Fail($"agent {bucket.Agents[thin]} keeps {bucket.Graph.Neighbours(thin).Count(survivorSet.Contains)} live neighbours, fewer than the threshold {threshold}");
                continue;
            }

            var unmaskRequest = new SecAggUnmask();
            unmaskRequest.Survivors.Add(unmasking.Survivors);
            unmaskRequest.Dropped.Add(unmasking.Dropped);
            unmaskRequests[bucket] = unmaskRequest;
        }

        var needed = _settings.ResolveMinBuckets(_buckets.Count);
        if (unmaskRequests.Count < needed)
        {
            return Failed(FailureSummary(needed), metrics);
        }

        var survivors = new List<string>();
        foreach (var (bucket, request) in unmaskRequests)
        {
            foreach (var index in request.Survivors)
            {
                survivors.Add(bucket.Agents[index]);
                stage.Send(bucket.Agents[index], new SecAggStage { Unmask = request });
            }
        }

        await stage.RunAsync("unmasking", survivors, _settings.UnmaskSeconds, SecAggReply.StageOneofCase.Unmasking, (agentId, reply) =>
        {
            var bucket = _bucketOf[agentId];
            var shares = reply.Unmasking.Shares.Select(s => new RevealedShare(s.Owner, s.SelfMaskSeed, new ShamirShare(s.X, ReadValues(s.Values.Span)))).ToList();
            bucket.Coordinator!.SubmitUnmasking(new UnmaskingResponse(bucket.Index[agentId], shares));
            return null;
        }, stoppingToken, inSum: true).ConfigureAwait(false);

        var unmaskStarted = _time.GetTimestamp();
        var results = new List<(Bucket Bucket, SecureAggregationResult Result)>();
        foreach (var bucket in unmaskRequests.Keys.OrderBy(b => b.Number))
        {
            try
            {
                results.Add((bucket, bucket.Coordinator!.Finish()));
            }
            catch (Exception e) when (e is SecureAggregationException or ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                // Too few shares, or shares that do not reconstruct (malformed, inconsistent, or a key that does not match its advertisement).
                bucket.Fail(e.Message);
            }
        }

        metrics["secagg_unmask_s"] = _time.GetElapsedTime(unmaskStarted).TotalSeconds.ToString("F3", CultureInfo.InvariantCulture);
        metrics["secagg_buckets_failed"] = Inv(_buckets.Count(b => b.FailureReason is not null));

        // Whatever was unmasked is released, even if the round then fails for want of buckets: charge it.
        var released = Released(results);
        if (results.Count < needed)
        {
            return Failed(FailureSummary(needed), metrics) with { Released = released };
        }

        foreach (var bucket in _buckets.Where(b => b.FailureReason is not null))
        {
            LogBucketFailed(_logger, _round, bucket.Number, _buckets.Count, bucket.FailureReason!);
            foreach (var agentId in bucket.Agents.Where(masked.Contains))
            {
                stage.Drop(agentId, $"its bucket {bucket.Number} could not be unmasked: {bucket.FailureReason}");
            }
        }

        // Without noise the agents quantised delta_u · n_u / s: a bucket's sum over Σ n_u / s is its example-weighted mean.
        // With noise each agent encoded its delta unweighted: a bucket's sum over its survivors is its mean.
        var inSumAll = results.SelectMany(r => r.Result.Survivors.Select(i => r.Bucket.Agents[i])).ToList();
        var sums = results.Select(r => (r.Result.Sum, Noisy
            ? r.Result.Survivors.Length
            : r.Result.Survivors.Sum(i => weights[r.Bucket.Agents[i]].Examples) / _weightScale)).ToList();
        var robustMetrics = new Dictionary<string, double>(StringComparer.Ordinal);
        float[] mean;
        try
        {
            mean = SecureBuckets.Combine(sums, _aggregator, new RobustContext { Round = _round, Metrics = robustMetrics });
        }
        catch (ArgumentException e)
        {
            return Failed($"the bucket aggregator '{_settings.BucketAggregator}' cannot combine {sums.Count} bucket means: {e.Message}", metrics) with { Released = released };
        }

        foreach (var (key, value) in robustMetrics)
        {
            metrics["secagg_" + key.Replace('.', '_')] = Inv(value, "G6");
        }

        var totalExamples = inSumAll.Sum(a => weights[a].Examples);
        var (droppedCount, excludedCount) = (results.Sum(r => r.Result.Dropped.Length), results.Sum(r => r.Result.Excluded.Length));
        LogCompleted(_logger, _round, inSumAll.Count, droppedCount, excludedCount);
        var aggregate = new ClientUpdate
        {
            ClientId = "secure-aggregate",
            NumExamples = totalExamples,
            LocalSteps = (long)Math.Round(inSumAll.Average(a => (double)weights[a].Steps)),
            Delta = mean,
        };
        var losses = inSumAll.Where(a => weights[a].Loss is not null).Select(a => (weights[a].Loss!.Value, weights[a].Examples)).ToList();
        return new SecureRoundOutcome(aggregate, inSumAll.Count, null, inSumAll.Max(a => weights[a].TrainSeconds), losses, metrics) { Released = released };
    }

    /// <summary>
    /// The ledger entry of the unmasked bucket sums: each agent is in one bucket, so the round costs what the costliest
    /// bucket's release costs (parallel composition); null without noise or when nothing was unmasked.
    /// </summary>
    private PrivacyLedgerEntry? Released(List<(Bucket Bucket, SecureAggregationResult Result)> results)
    {
        if (!Noisy || results.Count == 0)
        {
            return null;
        }

        var delta = _settings.Noise.Delta;
        return results.Select(r => r.Bucket.Coordinator!.Noise!.LedgerEntry).Distinct()
            .MaxBy(e => new PrivacyLedger([e]).Spent(delta).Epsilon);
    }

    private string FailureSummary(int needed)
    {
        var failed = _buckets.Where(b => b.FailureReason is not null).ToList();
        if (_buckets.Count == 1)
        {
            return failed.Count == 1 ? failed[0].FailureReason! : "secure aggregation unmasked nothing";
        }

        return $"{_buckets.Count - failed.Count} of {_buckets.Count} buckets unmasked, fewer than the {needed} needed ("
            + string.Join("; ", failed.Select(b => $"bucket {b.Number}: {b.FailureReason}")) + ")";
    }

    private SecureRoundOutcome Failed(string reason, Dictionary<string, string> metrics)
    {
        LogFailed(_logger, _round, reason);
        metrics["secagg_failure"] = reason.Replace(',', ';');
        return new SecureRoundOutcome(null, 0, reason, 0, [], metrics);
    }

    private static string Inv(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Inv(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>One bucket: an independent SecAgg+ instance over some of the round's agents.</summary>
    private sealed class Bucket
    {
        public Bucket(int number, string[] agents, SecureAggregationSettings settings, int length)
        {
            Number = number;
            Agents = agents;
            for (var i = 0; i < agents.Length; i++)
            {
                Index[agents[i]] = i;
            }

            Options = settings.ToOptions(agents.Length);
            Graph = NeighbourGraph.Create(agents.Length, Options.ResolveDegree(agents.Length), GraphSeed);
            _ = Options.ResolveThreshold(Graph.Degree);
            _ = Options.Quantizer(agents.Length);
            _ = Options.NoiseEncoding(agents.Length, length);
        }

        public int Number { get; }

        public string[] Agents { get; }

        public Dictionary<string, int> Index { get; } = new(StringComparer.Ordinal);

        public byte[] GraphSeed { get; } = RandomNumberGenerator.GetBytes(32);

        public SecureAggregationOptions Options { get; }

        public NeighbourGraph Graph { get; }

        public Dictionary<int, byte[]> Identities { get; } = [];

        public SecureAggregationCoordinator? Coordinator { get; set; }

        public string? FailureReason { get; private set; }

        public void Fail(string reason) => FailureReason ??= reason;
    }

    private static UInt128[] ReadValues(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length % 16 != 0)
        {
            throw new SecureAggregationException("A revealed share's values are not whole 16-byte field elements.");
        }

        var values = new UInt128[bytes.Length / 16];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(bytes[(16 * i)..]);
        }

        return values;
    }

    /// <summary>The event loop of one stage: who is still in the round, who answered, and the dropouts.</summary>
    private sealed class Stage(SecureRound owner, IReadOnlyDictionary<string, string> tasks, List<ClientFailure> failures, Action<ResultReceived> dropLate)
    {
        private readonly HashSet<string> _out = new(StringComparer.Ordinal);

        public void Send(string agentId, SecAggStage message)
        {
            message.TaskId = tasks[agentId];
            message.Round = owner._round;
            if (!owner._registry.TrySend(agentId, new CoordinatorMessage { Secagg = message }))
            {
                Drop(agentId, "disconnected before a secure-aggregation stage was sent");
            }
        }

        public void Drop(string agentId, string reason)
        {
            if (_out.Add(agentId))
            {
                failures.Add(new ClientFailure(agentId, reason));
                LogDropout(owner._logger, owner._round, agentId, reason);
            }
        }

        /// <summary>
        /// Waits for <paramref name="expected"/>'s answers of kind <paramref name="kind"/> until all came or
        /// <paramref name="seconds"/> passed; <paramref name="accept"/> returns null to keep the agent, or why it is
        /// dropped. Returns the agents that answered and were kept, in index order.
        /// </summary>
        public async Task<List<string>> RunAsync(string name, IReadOnlyCollection<string> expected, double seconds, SecAggReply.StageOneofCase kind,
            Func<string, SecAggReply, string?> accept, CancellationToken stoppingToken, bool inSum = false)
        {
            var waiting = expected.Where(a => !_out.Contains(a)).ToHashSet(StringComparer.Ordinal);
            var answered = new List<string>();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(seconds), owner._time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, deadline.Token);
            while (waiting.Count > 0)
            {
                RoundEvent next;
                try
                {
                    next = await owner._events.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                switch (next)
                {
                    case SecAggReceived { Reply: var reply } received when waiting.Contains(received.AgentId) && reply.Round == owner._round
                        && reply.TaskId == tasks[received.AgentId] && reply.StageCase == kind:
                        waiting.Remove(received.AgentId);
                        string? refusal;
                        try
                        {
                            refusal = accept(received.AgentId, reply);
                        }
                        catch (Exception e) when (e is SecureAggregationException or TransferException or ArgumentException)
                        {
                            refusal = $"{name} rejected: {e.Message}";
                        }

                        if (refusal is null)
                        {
                            answered.Add(received.AgentId);
                        }
                        else
                        {
                            Drop(received.AgentId, refusal);
                        }

                        break;
                    case ResultReceived { Result: var result } received when tasks.TryGetValue(received.AgentId, out var taskId) && taskId == result.TaskId && result.Round == owner._round:
                        // A secure round's train task ends with stage answers; a result is the agent giving up (training failed, or it refused a stage).
                        var reason = $"{name}: {(result.Ok ? "sent a plain result to a secure round" : result.Error)}";
                        if (inSum)
                        {
                            // Its masked input is in the sum already; only its shares are missing.
                            waiting.Remove(received.AgentId);
                            LogNoShares(owner._logger, owner._round, received.AgentId, reason);
                        }
                        else
                        {
                            waiting.Remove(received.AgentId);
                            Drop(received.AgentId, reason);
                        }

                        break;
                    case ResultReceived late:
                        dropLate(late);
                        break;
                    case AgentChanged { Connected: false } gone when waiting.Contains(gone.AgentId) && !owner._registry.IsConnected(gone.AgentId) && !owner._registry.HasHeld(gone.AgentId):
                        waiting.Remove(gone.AgentId);
                        if (inSum)
                        {
                            LogNoShares(owner._logger, owner._round, gone.AgentId, $"disconnected during the {name} stage");
                        }
                        else
                        {
                            Drop(gone.AgentId, $"disconnected during the {name} stage");
                        }

                        break;
                    default:
                        break;
                }
            }

            foreach (var agentId in waiting)
            {
                var reason = $"no {name} answer before the stage's deadline ({seconds:0.###} s)";
                if (inSum)
                {
                    LogNoShares(owner._logger, owner._round, agentId, reason);
                }
                else
                {
                    Drop(agentId, reason);
                }
            }

            return [.. answered.OrderBy(a => owner._index[a])];
        }
    }

    [LoggerMessage(EventId = 1500, Level = LogLevel.Warning, Message = "Round {Round}: agent {AgentId} excluded from secure aggregation: {Reason}")]
    private static partial void LogExcluded(ILogger logger, int round, string agentId, string reason);

    [LoggerMessage(EventId = 1501, Level = LogLevel.Warning, Message = "Round {Round}: agent {AgentId} dropped out of secure aggregation: {Reason}")]
    private static partial void LogDropout(ILogger logger, int round, string agentId, string reason);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Error, Message = "Round {Round}: secure aggregation failed: {Reason}; the global model is unchanged")]
    private static partial void LogFailed(ILogger logger, int round, string reason);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Warning, Message = "Round {Round}: survivor {AgentId} revealed no shares ({Reason}); its input stays in the sum if its neighbours' shares suffice")]
    private static partial void LogNoShares(ILogger logger, int round, string agentId, string reason);

    [LoggerMessage(EventId = 1503, Level = LogLevel.Information, Message = "Round {Round}: secure aggregation unmasked the sum of {Survivors} agents ({Dropped} dropped after sharing keys, {Excluded} excluded)")]
    private static partial void LogCompleted(ILogger logger, int round, int survivors, int dropped, int excluded);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Warning, Message = "Round {Round}: bucket {Bucket} of {Buckets} dropped from the round: {Reason}")]
    private static partial void LogBucketFailed(ILogger logger, int round, int bucket, int buckets, string reason);
}
