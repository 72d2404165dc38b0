using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Federated.Learning.Privacy;

namespace Federated.Learning.SecureAggregation;

/// <summary>The four stages of a secure-aggregation round, in order.</summary>
public enum SecureAggregationStage
{
    /// <summary>Stage 1: agents advertise their signed public keys.</summary>
    AdvertiseKeys,

    /// <summary>Stage 2: agents send encrypted shares of their secrets to their neighbours.</summary>
    ShareKeys,

    /// <summary>Stage 3: agents send their masked inputs.</summary>
    MaskedInput,

    /// <summary>Stage 4: survivors reveal the shares that remove the masks.</summary>
    Unmasking,
}

/// <summary>A simulated secure-aggregation round: who takes part, who drops out where, who misbehaves.</summary>
public sealed record SecureAggregationScenario
{
    /// <summary>n: agents selected for the round.</summary>
    public required int Agents { get; init; }

    /// <summary>d: parameters per update.</summary>
    public required int Length { get; init; }

    /// <summary>The protocol parameters.</summary>
    public SecureAggregationOptions Options { get; init; } = new();

    /// <summary>The round number.</summary>
    public long Round { get; init; } = 1;

    /// <summary>The simulation seed (identities, keys, graph, dropouts, rounding); a seeded run has no secrecy.</summary>
    public string Seed { get; init; } = "secagg";

    /// <summary>Per stage, the fraction of the agents still active that drop out before sending that stage's message.</summary>
    public IReadOnlyDictionary<SecureAggregationStage, double> Dropouts { get; init; } = new Dictionary<SecureAggregationStage, double>();

    /// <summary>Agents that corrupt every encrypted share they send.</summary>
    public IReadOnlySet<int> TamperedShares { get; init; } = new HashSet<int>();

    /// <summary>Agents whose key advertisement carries a bad signature.</summary>
    public IReadOnlySet<int> BadSignatures { get; init; } = new HashSet<int>();

    /// <summary>Keep the quantised inputs to compute the plaintext ring sum for checking (d·n words of memory).</summary>
    public bool ComputePlaintextSum { get; init; } = true;
}

/// <summary>What a simulated round cost: means over the agents that ran each part, and the coordinator's total.</summary>
/// <param name="AgentMilliseconds">Mean compute time of an agent over the stages it ran (quantisation included).</param>
/// <param name="AgentMaskingMilliseconds">Mean time of an agent's masked-input stage (share decryption and mask expansion).</param>
/// <param name="AgentUploadBytes">Mean bytes an agent that sent its masked input uploaded over all stages.</param>
/// <param name="AgentDownloadBytes">Mean bytes such an agent received (keys, shares, the unmasking request).</param>
/// <param name="RingVectorBytes">The ring-encoded vector alone: ⌈d·b / 8⌉.</param>
/// <param name="CoordinatorMilliseconds">The coordinator's compute time over all stages.</param>
/// <param name="CoordinatorUnmaskMilliseconds">Of which the final unmasking (reconstruction, mask removal, dequantisation).</param>
public sealed record SecureAggregationCosts(
    double AgentMilliseconds,
    double AgentMaskingMilliseconds,
    double AgentUploadBytes,
    double AgentDownloadBytes,
    long RingVectorBytes,
    double CoordinatorMilliseconds,
    double CoordinatorUnmaskMilliseconds);

/// <summary>A simulated round's result, the plaintext ring sum of the same survivors (if asked for) and its costs.</summary>
/// <param name="Result">The coordinator's result.</param>
/// <param name="PlaintextRingSum">Σ q_u over the survivors, computed in the clear; null if not asked for.</param>
/// <param name="Costs">Compute time and bytes.</param>
public sealed record SecureAggregationRun(SecureAggregationResult Result, uint[]? PlaintextRingSum, SecureAggregationCosts Costs);

/// <summary>
/// Runs a whole SecAgg+ round in memory for tests and benchmarks: n <see cref="SecureAggregationAgent"/>s and one
/// <see cref="SecureAggregationCoordinator"/>, the messages passed directly, dropouts and misbehaving agents as the
/// scenario says. An agent that refuses a stage (a <see cref="SecureAggregationException"/>) counts as dropped from
/// that stage on. Not the transport: the gRPC stages will drive the same two classes.
/// </summary>
public static class InMemorySecureAggregation
{
    /// <summary>Runs <paramref name="scenario"/>, agent u's update being <paramref name="inputs"/>(u) (d floats).</summary>
    public static SecureAggregationRun Run(SecureAggregationScenario scenario, Func<int, float[]> inputs)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(inputs);
        var n = scenario.Agents;
        var options = scenario.Options;
        var master = SHA256.HashData(Encoding.UTF8.GetBytes(scenario.Seed));
        var identities = Enumerable.Range(0, n).Select(u => AgentIdentity.FromPrivateKey(DeriveKey(master, "identity", u))).ToArray();
        var identityKeys = identities.Select((identity, u) => (u, identity.PublicKey)).ToDictionary(p => p.u, p => p.PublicKey);
        var graph = NeighbourGraph.Create(n, options.ResolveDegree(n), DeriveKey(master, "graph", 0));
        var dropouts = new ChaCha20Random(DeriveKey(master, "dropouts", 0));
        var coordinator = new SecureAggregationCoordinator(scenario.Round, graph, options, identityKeys, scenario.Length);
        var agentTime = new long[n];
        var maskingTime = new long[n];
        var upload = new long[n];
        var download = new long[n];
        long coordinatorTime = 0;
        var agents = new SecureAggregationAgent[n];
        try
        {
            for (var u = 0; u < n; u++)
            {
                agents[u] = new SecureAggregationAgent(u, scenario.Round, graph, options, identities[u], new ChaCha20Random(DeriveKey(master, "agent", u)));
            }

            var active = Enumerable.Range(0, n).ToList();

            // Stage 1: advertise keys.
            active = Drop(active, scenario, SecureAggregationStage.AdvertiseKeys, dropouts);
            foreach (var u in active)
            {
                var ad = Timed(ref agentTime[u], () => agents[u].AdvertiseKeys());
                if (scenario.BadSignatures.Contains(u))
                {
                    var signature = (byte[])ad.Signature.Clone();
                    signature[0] ^= 1;
                    ad = ad with { Signature = signature };
                }

                upload[u] += ad.EncodedSize;
                Timed(ref coordinatorTime, () => coordinator.SubmitKeys(ad));
            }

            // Stage 2: share keys.
            active = Drop(active, scenario, SecureAggregationStage.ShareKeys, dropouts);
            var sharers = new List<int>();
            foreach (var u in active)
            {
                var keys = Timed(ref coordinatorTime, () => coordinator.KeysFor(u));
                download[u] += keys.Sum(k => (long)k.EncodedSize);
                try
                {
                    var shares = Timed(ref agentTime[u], () => agents[u].ShareKeys(keys, identityKeys));
                    if (scenario.TamperedShares.Contains(u))
                    {
                        shares = [.. shares.Select(s => s with { Ciphertext = Flipped(s.Ciphertext) })];
                    }

                    upload[u] += shares.Sum(s => (long)s.EncodedSize);
                    Timed(ref coordinatorTime, () => coordinator.SubmitShares(u, shares));
                    sharers.Add(u);
                }
                catch (SecureAggregationException)
                {
                    // The agent refused to go on: it drops out.
                }
            }

            // Stage 3: masked input.
            active = Drop(sharers, scenario, SecureAggregationStage.MaskedInput, dropouts);
            var quantizer = coordinator.Quantizer;
            var plain = new Dictionary<int, uint[]>();
            foreach (var u in active)
            {
                var received = Timed(ref coordinatorTime, () => coordinator.SharesFor(u));
                download[u] += received.Sum(s => (long)s.EncodedSize);
                var input = inputs(u);
                var quantized = new uint[scenario.Length];
                if (coordinator.Noise is { } noise)
                {
                    Timed(ref agentTime[u], () => noise.Encode(input, quantized, new ChaCha20Random(DeriveKey(master, "rounding", u))));
                }
                else
                {
                    Timed(ref agentTime[u], () => quantizer.Quantize(input, quantized, options.StochasticRounding ? new ChaCha20Random(DeriveKey(master, "rounding", u)) : null));
                }

                var masked = Timed(ref maskingTime[u], () => agents[u].MaskInput(quantized, received));
                agentTime[u] += maskingTime[u];
                upload[u] += masked.EncodedSize(options.RingBits);
                if (scenario.ComputePlaintextSum)
                {
                    plain[u] = quantized;
                }

                Timed(ref coordinatorTime, () => coordinator.SubmitMaskedInput(masked));
            }

            var request = Timed(ref coordinatorTime, coordinator.CloseMaskedInput);

            // Stage 4: unmasking.
            active = Drop([.. request.Survivors], scenario, SecureAggregationStage.Unmasking, dropouts);
            foreach (var u in active)
            {
                download[u] += 4L * (request.Survivors.Length + request.Dropped.Length);
                try
                {
                    var response = Timed(ref agentTime[u], () => agents[u].Unmask(request));
                    upload[u] += response.EncodedSize;
                    Timed(ref coordinatorTime, () => coordinator.SubmitUnmasking(response));
                }
                catch (SecureAggregationException)
                {
                    // The agent refused the request: it does not answer.
                }
            }

            long unmaskTime = 0;
            var result = Timed(ref unmaskTime, coordinator.Finish);
            coordinatorTime += unmaskTime;
            uint[]? plaintext = null;
            if (scenario.ComputePlaintextSum)
            {
                plaintext = new uint[scenario.Length];
                foreach (var u in result.Survivors)
                {
                    System.Numerics.Tensors.TensorPrimitives.Add(plaintext, plain[u], plaintext);
                }

                System.Numerics.Tensors.TensorPrimitives.BitwiseAnd(plaintext, quantizer.RingMask, plaintext);
            }

            var senders = plain.Keys.Count > 0 ? [.. plain.Keys] : Enumerable.Range(0, n).Where(u => maskingTime[u] > 0).ToArray();
            var costs = new SecureAggregationCosts(
                Milliseconds(agentTime.Where(t => t > 0).DefaultIfEmpty().Average()),
                Milliseconds(senders.Select(u => (double)maskingTime[u]).DefaultIfEmpty().Average()),
                senders.Select(u => (double)upload[u]).DefaultIfEmpty().Average(),
                senders.Select(u => (double)download[u]).DefaultIfEmpty().Average(),
                quantizer.EncodedBytes(scenario.Length),
                Milliseconds(coordinatorTime),
                Milliseconds(unmaskTime));
            return new SecureAggregationRun(result, plaintext, costs);
        }
        finally
        {
            foreach (var agent in agents)
            {
                agent?.Dispose();
            }

            foreach (var identity in identities)
            {
                identity.Dispose();
            }
        }
    }

    private static List<int> Drop(List<int> active, SecureAggregationScenario scenario, SecureAggregationStage stage, ChaCha20Random random)
    {
        var rate = scenario.Dropouts.TryGetValue(stage, out var r) ? r : 0;
        if (rate is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(scenario), rate, "Dropout rates lie in [0, 1].");
        }

        var count = (int)Math.Round(rate * active.Count);
        var shuffled = active.ToArray();
        for (var i = shuffled.Length - 1; i > 0; i--)
        {
            var j = (int)(random.NextUInt64() % (ulong)(i + 1));
            (shuffled[i], shuffled[j]) = (shuffled[j], shuffled[i]);
        }

        var dropped = shuffled.Take(count).ToHashSet();
        return [.. active.Where(u => !dropped.Contains(u))];
    }

    private static byte[] DeriveKey(byte[] master, string purpose, int index) =>
        SHA256.HashData(Encoding.UTF8.GetBytes($"{Convert.ToHexString(master)}/{purpose}/{index}"));

    private static byte[] Flipped(byte[] bytes)
    {
        var copy = (byte[])bytes.Clone();
        copy[^1] ^= 0x80;
        return copy;
    }

    private static void Timed(ref long ticks, Action action)
    {
        var start = Stopwatch.GetTimestamp();
        action();
        ticks += Stopwatch.GetTimestamp() - start;
    }

    private static T Timed<T>(ref long ticks, Func<T> action)
    {
        var start = Stopwatch.GetTimestamp();
        var result = action();
        ticks += Stopwatch.GetTimestamp() - start;
        return result;
    }

    private static double Milliseconds(double ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
