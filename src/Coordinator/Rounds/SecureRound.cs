using System.Security.Cryptography;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Transfers;
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
internal sealed record SecureRoundOutcome(ClientUpdate? Aggregate, int Survivors, string? FailureReason, double SlowestTrain, IReadOnlyList<(double Loss, long Examples)> Losses, IReadOnlyDictionary<string, string> Metrics);

/// <summary>
/// The four SecAgg+ stages of one round over the agents' sessions, driven by the round loop's events: after training
/// each agent advertises its keys (checked against the Ed25519 key it enrolled with); the coordinator forwards each
/// agent its neighbours' advertisements, routes the encrypted shares unread, collects the masked inputs through the
/// chunked uploads, asks the survivors for the shares that remove the masks, and hands the round loop only the sum.
/// Each stage ends when every agent still in the round has answered or at its deadline; an agent that has not answered
/// by then (or failed, or disconnected) is a dropout.
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
    private readonly byte[] _graphSeed = RandomNumberGenerator.GetBytes(32);
    private readonly double _weightScale;
    private readonly SecureAggregationOptions? _options;
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
            _options = settings.ToOptions(_agents.Length);
            Graph = NeighbourGraph.Create(_agents.Length, _options.ResolveDegree(_agents.Length), _graphSeed);
            _ = _options.ResolveThreshold(Graph.Degree);
            _ = _options.Quantizer(_agents.Length);
        }
        catch (ArgumentException e)
        {
            _setupError = $"secure aggregation cannot run with {_agents.Length} agents: {e.Message}";
            _options = null;
        }
    }

    /// <summary>The round's neighbour graph (null when the round cannot run).</summary>
    public NeighbourGraph? Graph { get; }

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
            GraphSeed = ByteString.CopyFrom(_graphSeed),
            WeightScale = _weightScale,
        };
        if (_options is not null && Graph is not null)
        {
            setup.Degree = Graph.Degree;
            setup.Threshold = _options.ResolveThreshold(Graph.Degree);
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
        if (_setupError is not null || _options is null || Graph is null)
        {
            return Failed(_setupError ?? "secure aggregation could not be set up", metrics);
        }

        var identities = new Dictionary<int, byte[]>();
        foreach (var (agentId, index) in _index)
        {
            if (_registry.Find(agentId)?.PublicKey is { } key)
            {
                identities[index] = key;
            }
        }

        var coordinator = new SecureAggregationCoordinator(_round, Graph, _options, identities, _length);
        var stage = new Stage(this, pending, failures, dropLate);

        // Stage 0 + 1: training, then the signed key advertisements.
        var advertised = await stage.RunAsync("advertise keys", [.. pending.Keys], trainSeconds, SecAggReply.StageOneofCase.Keys, (agentId, reply) =>
        {
            var keys = reply.Keys;
            var ad = new KeyAdvertisement(keys.AgentIndex, _round, keys.MaskingPublicKey.ToByteArray(), keys.EncryptionPublicKey.ToByteArray(), keys.Signature.ToByteArray());
            if (keys.AgentIndex != _index[agentId] || !coordinator.SubmitKeys(ad))
            {
                var reason = identities.ContainsKey(_index[agentId]) ? "its key advertisement's signature does not verify under its enrolled identity key" : "it has no enrolled identity key to verify its key advertisement";
                LogExcluded(_logger, _round, agentId, reason);
                return reason;
            }

            // It trained on this round's model: it holds it (the downlink codec may send it a delta next time).
            delivered(agentId);
            return null;
        }, stoppingToken).ConfigureAwait(false);
        metrics["secagg_advertised"] = advertised.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);

        // Stage 2: each agent gets its neighbours' advertisements and answers with encrypted shares.
        foreach (var agentId in advertised)
        {
            var request = new SecAggShareKeys();
            foreach (var ad in coordinator.KeysFor(_index[agentId]))
            {
                request.Neighbours.Add(new SecAggKeys
                {
                    AgentIndex = ad.AgentId,
                    MaskingPublicKey = ByteString.CopyFrom(ad.MaskingPublicKey),
                    EncryptionPublicKey = ByteString.CopyFrom(ad.EncryptionPublicKey),
                    Signature = ByteString.CopyFrom(ad.Signature),
                    IdentityPublicKey = ByteString.CopyFrom(identities[ad.AgentId]),
                });
            }

            stage.Send(agentId, new SecAggStage { ShareKeys = request });
        }

        var shared = await stage.RunAsync("share keys", advertised, _settings.ShareKeysSeconds, SecAggReply.StageOneofCase.Shares, (agentId, reply) =>
        {
            var shares = reply.Shares.Shares.Select(s => new EncryptedShare(s.Sender, s.Recipient, s.Ciphertext.ToByteArray())).ToList();
            coordinator.SubmitShares(_index[agentId], shares);
            return null;
        }, stoppingToken).ConfigureAwait(false);

        // Stage 3: each agent gets the shares addressed to it and uploads its masked input.
        foreach (var agentId in shared)
        {
            var request = new SecAggMaskInput();
            foreach (var share in coordinator.SharesFor(_index[agentId]))
            {
                request.Shares.Add(new SecAggShare { Sender = share.Sender, Recipient = share.Recipient, Ciphertext = ByteString.CopyFrom(share.Ciphertext) });
            }

            stage.Send(agentId, new SecAggStage { MaskInput = request });
        }

        var weights = new Dictionary<string, (long Examples, long Steps, double TrainSeconds, double? Loss)>(StringComparer.Ordinal);
        var masked = await stage.RunAsync("masked input", shared, _settings.MaskedInputSeconds, SecAggReply.StageOneofCase.MaskedInput, (agentId, reply) =>
        {
            var input = reply.MaskedInput;
            if (input.NumExamples <= 0)
            {
                return "its masked input names no examples";
            }

            var payload = PayloadCodec.Parse(_transfers.TakeCompleted(agentId, input.UploadTransferId), _fingerprint);
            var vector = PayloadCodec.ReadRing(payload, PayloadCodec.ModelTensor, _length);
            coordinator.SubmitMaskedInput(new MaskedInput(_index[agentId], vector, [.. input.RejectedSenders]));
            weights[agentId] = (input.NumExamples, input.LocalSteps, input.Metrics.GetValueOrDefault("train_seconds"),
                input.Metrics.TryGetValue("train_loss", out var loss) ? loss : null);
            return null;
        }, stoppingToken).ConfigureAwait(false);

        // Stage 4: the survivors reveal the shares that remove the masks.
        UnmaskingRequest unmasking;
        try
        {
            unmasking = coordinator.CloseMaskedInput();
        }
        catch (SecureAggregationException e)
        {
            return Failed(e.Message, metrics);
        }

        var survivors = unmasking.Survivors.Select(i => _agents[i]).ToList();
        metrics["secagg_survivors"] = survivors.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        metrics["secagg_dropped"] = unmasking.Dropped.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var excluded in masked.Where(a => !survivors.Contains(a)))
        {
            stage.Drop(excluded, "excluded: a neighbour reported its encrypted shares as forged");
        }

        var threshold = _options.ResolveThreshold(Graph.Degree);
        var survivorSet = unmasking.Survivors.ToHashSet();
        var thin = unmasking.Survivors.FirstOrDefault(u => Graph.Neighbours(u).Count(survivorSet.Contains) < threshold, -1);
        if (thin >= 0)
        {
            return Failed($"agent {_agents[thin]} keeps {Graph.Neighbours(thin).Count(survivorSet.Contains)} live neighbours, fewer than the threshold {threshold}", metrics);
        }

        var unmaskRequest = new SecAggUnmask();
        unmaskRequest.Survivors.Add(unmasking.Survivors);
        unmaskRequest.Dropped.Add(unmasking.Dropped);
        foreach (var agentId in survivors)
        {
            stage.Send(agentId, new SecAggStage { Unmask = unmaskRequest });
        }

        await stage.RunAsync("unmasking", survivors, _settings.UnmaskSeconds, SecAggReply.StageOneofCase.Unmasking, (agentId, reply) =>
        {
            var shares = reply.Unmasking.Shares.Select(s => new RevealedShare(s.Owner, s.SelfMaskSeed, new ShamirShare(s.X, ReadValues(s.Values.Span)))).ToList();
            coordinator.SubmitUnmasking(new UnmaskingResponse(_index[agentId], shares));
            return null;
        }, stoppingToken, inSum: true).ConfigureAwait(false);

        SecureAggregationResult result;
        var unmaskStarted = _time.GetTimestamp();
        try
        {
            result = coordinator.Finish();
        }
        catch (Exception e) when (e is SecureAggregationException or ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            // Too few shares, or shares that do not reconstruct (malformed, inconsistent, or a key that does not match its advertisement).
            return Failed(e.Message, metrics);
        }

        metrics["secagg_unmask_s"] = _time.GetElapsedTime(unmaskStarted).TotalSeconds.ToString("F3", System.Globalization.CultureInfo.InvariantCulture);

        // The agents quantised delta_u · n_u / s: dividing the sum by Σ n_u / s gives the example-weighted mean.
        var inSum = result.Survivors.Select(i => _agents[i]).ToList();
        var totalExamples = inSum.Sum(a => weights[a].Examples);
        var divisor = totalExamples / _weightScale;
        var mean = result.Sum;
        for (var i = 0; i < mean.Length; i++)
        {
            mean[i] = (float)(mean[i] / divisor);
        }

        LogCompleted(_logger, _round, inSum.Count, result.Dropped.Length, result.Excluded.Length);
        var aggregate = new ClientUpdate
        {
            ClientId = "secure-aggregate",
            NumExamples = totalExamples,
            LocalSteps = (long)Math.Round(inSum.Average(a => (double)weights[a].Steps)),
            Delta = mean,
        };
        var losses = inSum.Where(a => weights[a].Loss is not null).Select(a => (weights[a].Loss!.Value, weights[a].Examples)).ToList();
        return new SecureRoundOutcome(aggregate, inSum.Count, null, inSum.Max(a => weights[a].TrainSeconds), losses, metrics);
    }

    private SecureRoundOutcome Failed(string reason, Dictionary<string, string> metrics)
    {
        LogFailed(_logger, _round, reason);
        metrics["secagg_failure"] = reason.Replace(',', ';');
        return new SecureRoundOutcome(null, 0, reason, 0, [], metrics);
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
}
