using System.Buffers.Binary;
using Federated.Learning.Privacy;
using Federated.Learning.SecureAggregation;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;

namespace Federated.Client.Agent;

/// <summary>
/// The agent's side of one SecAgg+ round, translated to and from the wire: it holds the round's keys and the trained
/// delta between the coordinator's stage messages, signs its key advertisement with the agent's Ed25519 identity key,
/// and never sends the delta itself, only its quantised, masked ring vector.
/// </summary>
internal sealed class SecureRoundAgent : IDisposable
{
    private readonly SecureAggregationAgent _agent;
    private readonly SecAggSetup _setup;
    private readonly SecureAggregationOptions _options;
    private readonly float[] _delta;
    private readonly bool _corruptSignature;
    private readonly SkellamEncoding? _noise;

    /// <summary>
    /// The round of <paramref name="task"/> for an agent that trained <paramref name="delta"/> on
    /// <paramref name="examples"/> examples. <paramref name="corruptSignature"/> simulates a forged advertisement.
    /// </summary>
    /// <exception cref="ArgumentException">The setup is inconsistent (bad degree, threshold, ring or index).</exception>
    public SecureRoundAgent(TrainTask task, AgentIdentity identity, float[] delta, long examples, IReadOnlyDictionary<string, double> trainMetrics, long localSteps, bool corruptSignature)
    {
        ArgumentNullException.ThrowIfNull(task);
        _setup = task.Secagg ?? throw new ArgumentException("The task carries no secure-aggregation setup.", nameof(task));
        Task = task;
        _options = new SecureAggregationOptions
        {
            RingBits = _setup.RingBits,
            ClipRange = _setup.ClipRange,
            Degree = _setup.Degree,
            Threshold = _setup.Threshold,
            StochasticRounding = _setup.StochasticRounding,
            Noise = _setup.NoiseMultiplier > 0 ? new DistributedNoiseOptions { NoiseMultiplier = _setup.NoiseMultiplier, L2Clip = _setup.L2Clip } : null,
            MinSurvivors = _setup.MinSurvivors > 0 ? _setup.MinSurvivors : null,
        };
        _noise = _options.NoiseEncoding(_setup.Agents, delta.Length);
        var graph = NeighbourGraph.Create(_setup.Agents, _setup.Degree, _setup.GraphSeed.Span);
        _agent = new SecureAggregationAgent(_setup.AgentIndex, task.Round, graph, _options, identity, ChaCha20Random.FromEntropy());
        _delta = delta;
        Examples = examples;
        TrainMetrics = trainMetrics;
        LocalSteps = localSteps;
        _corruptSignature = corruptSignature;
    }

    /// <summary>The train task the round belongs to.</summary>
    public TrainTask Task { get; }

    /// <summary>The examples the delta was trained on (its weight).</summary>
    public long Examples { get; }

    /// <summary>Training metrics reported with the masked input.</summary>
    public IReadOnlyDictionary<string, double> TrainMetrics { get; }

    /// <summary>Local optimiser steps.</summary>
    public long LocalSteps { get; }

    /// <summary>Stage 1: the signed key advertisement.</summary>
    public SecAggReply AdvertiseKeys()
    {
        var ad = _agent.AdvertiseKeys();
        var signature = ad.Signature.ToArray();
        if (_corruptSignature)
        {
            signature[0] ^= 0x01;
        }

        return Reply(new SecAggReply
        {
            Keys = new SecAggKeys
            {
                AgentIndex = ad.AgentId,
                MaskingPublicKey = ByteString.CopyFrom(ad.MaskingPublicKey),
                EncryptionPublicKey = ByteString.CopyFrom(ad.EncryptionPublicKey),
                Signature = ByteString.CopyFrom(signature),
            },
        });
    }

    /// <summary>
    /// Stage 2: checks every neighbour's advertisement against the identity key the coordinator registered for it and
    /// answers with the encrypted shares. Throws <see cref="SecureAggregationException"/> with fewer than t verified neighbours.
    /// </summary>
    public SecAggReply ShareKeys(SecAggShareKeys request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ads = new List<KeyAdvertisement>();
        var identities = new Dictionary<int, byte[]>();
        foreach (var keys in request.Neighbours)
        {
            ads.Add(new KeyAdvertisement(keys.AgentIndex, Task.Round, keys.MaskingPublicKey.ToByteArray(), keys.EncryptionPublicKey.ToByteArray(), keys.Signature.ToByteArray()));
            identities[keys.AgentIndex] = keys.IdentityPublicKey.ToByteArray();
        }

        var reply = new SecAggSharesOut();
        foreach (var share in _agent.ShareKeys(ads, identities))
        {
            reply.Shares.Add(new SecAggShare { Sender = share.Sender, Recipient = share.Recipient, Ciphertext = ByteString.CopyFrom(share.Ciphertext) });
        }

        return Reply(new SecAggReply { Shares = reply });
    }

    /// <summary>
    /// Stage 3: scales the delta by its weight (n / weight_scale), clips and quantises it into the ring, masks it, and
    /// returns the payload to upload and the answer that names it. With noise the delta is not weighted: it is clipped
    /// in L2, scaled, rounded and noised (<see cref="SkellamEncoding"/>, the noise from OS entropy) before masking.
    /// </summary>
    public (Payload Payload, SecAggReply Reply) MaskInput(SecAggMaskInput request, string transferId, string layoutFingerprint)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_noise is not null)
        {
            var encoded = new uint[_delta.Length];
            var clipped = _noise.Encode(_delta, encoded, ChaCha20Random.FromEntropy());
            return Masked(request, encoded, transferId, layoutFingerprint, clipped ? 1 : 0);
        }

        var scale = _setup.WeightScale > 0 ? Examples / _setup.WeightScale : 1.0;
        var scaled = new float[_delta.Length];
        for (var i = 0; i < scaled.Length; i++)
        {
            scaled[i] = (float)(_delta[i] * scale);
        }

        var quantizer = _options.Quantizer(_setup.Agents);
        var quantized = new uint[scaled.Length];
        quantizer.Quantize(scaled, quantized, _options.StochasticRounding ? ChaCha20Random.FromEntropy() : null);
        return Masked(request, quantized, transferId, layoutFingerprint, scaled.Count(v => Math.Abs(v) > _setup.ClipRange) / (double)Math.Max(1, scaled.Length));
    }

    private (Payload Payload, SecAggReply Reply) Masked(SecAggMaskInput request, uint[] quantized, string transferId, string layoutFingerprint, double clippedFraction)
    {
        var shares = request.Shares.Select(s => new EncryptedShare(s.Sender, s.Recipient, s.Ciphertext.ToByteArray())).ToList();
        var masked = _agent.MaskInput(quantized, shares);
        var payload = new Payload { LayoutFingerprint = layoutFingerprint };
        PayloadCodec.AddRing(payload, PayloadCodec.ModelTensor, masked.Vector);
        var input = new SecAggMaskedInput { UploadTransferId = transferId, NumExamples = Examples, LocalSteps = LocalSteps };
        input.RejectedSenders.Add(masked.RejectedSenders);
        foreach (var (key, value) in TrainMetrics)
        {
            input.Metrics[key] = value;
        }

        input.Metrics["secagg_clipped_fraction"] = clippedFraction;
        return (payload, Reply(new SecAggReply { MaskedInput = input }));
    }

    /// <summary>Stage 4: the shares the coordinator may have (refuses, with <see cref="SecureAggregationException"/>, a request that would reveal both secrets of an agent).</summary>
    public SecAggReply Unmask(SecAggUnmask request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var response = _agent.Unmask(new UnmaskingRequest([.. request.Survivors], [.. request.Dropped]));
        var reply = new SecAggUnmasking();
        foreach (var share in response.Shares)
        {
            var values = new byte[16 * share.Share.Values.Length];
            for (var i = 0; i < share.Share.Values.Length; i++)
            {
                BinaryPrimitives.WriteUInt128LittleEndian(values.AsSpan(16 * i), share.Share.Values[i]);
            }

            reply.Shares.Add(new SecAggRevealedShare { Owner = share.Owner, SelfMaskSeed = share.SelfMaskSeed, X = share.Share.X, Values = ByteString.CopyFrom(values) });
        }

        return Reply(new SecAggReply { Unmasking = reply });
    }

    public void Dispose() => _agent.Dispose();

    private SecAggReply Reply(SecAggReply reply)
    {
        reply.TaskId = Task.TaskId;
        reply.Round = Task.Round;
        return reply;
    }
}
