using System.Numerics.Tensors;
using Federated.Learning.Privacy;

namespace Federated.Learning.Asynchronous;

/// <summary>What <see cref="FedBuffBuffer.Offer"/> did with an update.</summary>
public enum Admission
{
    /// <summary>Buffered.</summary>
    Accepted,

    /// <summary>Refused: its staleness is above the maximum.</summary>
    Stale,

    /// <summary>Refused: the agent already has <see cref="FedBuffOptions.MaxContributionsPerFlush"/> updates in this buffer.</summary>
    OverFlushCap,

    /// <summary>Refused: the agent has contributed <see cref="FedBuffOptions.MaxContributionsPerAgent"/> updates already.</summary>
    OverAgentCap,
}

/// <summary>What one flush applied.</summary>
/// <param name="Version">The new global version.</param>
/// <param name="Updates">Updates applied (K).</param>
/// <param name="MeanStaleness">Their mean staleness.</param>
/// <param name="MaxStaleness">Their largest staleness.</param>
/// <param name="MeanWeight">Their mean staleness weight.</param>
/// <param name="Clipped">Updates the clip bound shortened (0 without DP).</param>
/// <param name="NoiseStddev">The standard deviation of the noise added to each coordinate of the sum (0 without DP).</param>
public sealed record FlushResult(int Version, int Updates, double MeanStaleness, int MaxStaleness, double MeanWeight, int Clipped, double NoiseStddev);

/// <summary>
/// The server side of FedBuff as a pure unit (no I/O, no clock): updates (model deltas against the version the agent
/// trained on) come in with their base version; each is weighted by w(s), s = current version − base version, and
/// summed; at K updates <see cref="Flush"/> applies global ← global + η_g · (S + N) / K and advances the version.
/// </summary>
/// <remarks>
/// <para>
/// Central DP under asynchrony: each update is clipped to C before weighting (w ≤ 1 keeps it within C), each agent has
/// at most <see cref="FedBuffOptions.MaxContributionsPerFlush"/> updates in a buffer, so one agent moves the sum by at
/// most m·C and the Gaussian noise has standard deviation z·m·C. There is no sampling to amplify privacy (who
/// contributes is decided by who is fast, not by a secret Poisson draw), so every flush is one step with q = 1 in the
/// ledger. The cap over the run bounds how many flushes any one agent can appear in.
/// </para>
/// <para>Not thread-safe: the coordinator's loop owns it.</para>
/// </remarks>
public sealed class FedBuffBuffer
{
    private readonly FedBuffOptions _options;
    private readonly float[] _sum;
    private readonly float[] _scratch;
    private readonly Dictionary<string, int> _inBuffer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _overall = new(StringComparer.Ordinal);
    private readonly PrivacyLedger? _ledger;
    private readonly ChaCha20Random? _noise;
    private readonly List<(int Staleness, double Weight)> _buffered = [];
    private int _clipped;

    /// <summary>A buffer for models of <paramref name="length"/> floats, starting at global version <paramref name="version"/>.</summary>
    /// <param name="options">Validated options (throws <see cref="ArgumentException"/> with every error otherwise).</param>
    /// <param name="length">Model length.</param>
    /// <param name="version">The version of the global model now.</param>
    /// <param name="ledger">With DP: the ledger each flush is charged to (required then).</param>
    /// <param name="noise">With DP: the Gaussian noise's source (required then).</param>
    public FedBuffBuffer(FedBuffOptions options, int length, int version = 0, PrivacyLedger? ledger = null, ChaCha20Random? noise = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate().ToList();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        if (options.Private && (ledger is null || noise is null))
        {
            throw new ArgumentException("A private buffer needs a privacy ledger and a noise source.", nameof(ledger));
        }

        _options = options;
        _sum = new float[length];
        _scratch = new float[length];
        Version = version;
        _ledger = ledger;
        _noise = noise;
    }

    /// <summary>The current global version (flushes so far, plus the starting version).</summary>
    public int Version { get; private set; }

    /// <summary>Updates in the buffer.</summary>
    public int Count => _buffered.Count;

    /// <summary>True when the buffer holds K updates and must be flushed.</summary>
    public bool IsFull => _buffered.Count >= _options.BufferSize;

    /// <summary>Updates refused as too stale, over the run.</summary>
    public long RejectedStale { get; private set; }

    /// <summary>Updates refused by a contribution cap, over the run.</summary>
    public long RejectedOverCap { get; private set; }

    /// <summary>The options.</summary>
    public FedBuffOptions Options => _options;

    /// <summary>The staleness an update based on <paramref name="baseVersion"/> would have now.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A base version from the future or negative.</exception>
    public int StalenessOf(int baseVersion)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(baseVersion);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(baseVersion, Version);
        return Version - baseVersion;
    }

    /// <summary>False once <paramref name="agentId"/> has used up its cap over the run (no point asking it to train).</summary>
    public bool CanContribute(string agentId) =>
        _options.MaxContributionsPerAgent == 0 || _overall.GetValueOrDefault(agentId) < _options.MaxContributionsPerAgent;

    /// <summary>
    /// False while <paramref name="agentId"/> already has <see cref="FedBuffOptions.MaxContributionsPerFlush"/> updates in
    /// this buffer, or has used up its cap over the run: a task started now could only be refused if it finished before
    /// the flush.
    /// </summary>
    public bool CanContributeNow(string agentId) =>
        CanContribute(agentId) && _inBuffer.GetValueOrDefault(agentId) < _options.MaxContributionsPerFlush;

    /// <summary>Offers <paramref name="agentId"/>'s <paramref name="delta"/> (trained from version <paramref name="baseVersion"/>).</summary>
    /// <exception cref="ArgumentException">Wrong length, non-finite values, or a base version from the future.</exception>
    /// <exception cref="InvalidOperationException">The buffer is full: flush it first.</exception>
    public Admission Offer(string agentId, int baseVersion, ReadOnlySpan<float> delta)
    {
        ArgumentException.ThrowIfNullOrEmpty(agentId);
        if (delta.Length != _sum.Length)
        {
            throw new ArgumentException($"The update has {delta.Length} values, the model {_sum.Length}.", nameof(delta));
        }

        if (IsFull)
        {
            throw new InvalidOperationException("The buffer is full: flush it before offering more updates.");
        }

        var staleness = StalenessOf(baseVersion);
        if (staleness > _options.MaxStaleness)
        {
            RejectedStale++;
            return Admission.Stale;
        }

        if (!CanContribute(agentId))
        {
            RejectedOverCap++;
            return Admission.OverAgentCap;
        }

        if (_inBuffer.GetValueOrDefault(agentId) >= _options.MaxContributionsPerFlush)
        {
            RejectedOverCap++;
            return Admission.OverFlushCap;
        }

        if (!float.IsFinite(TensorPrimitives.Sum(delta)) && !AllFinite(delta))
        {
            throw new ArgumentException("The update has non-finite values.", nameof(delta));
        }

        delta.CopyTo(_scratch);
        if (_options.Private && L2Clipping.Clip(_scratch, _options.ClipBound).Clipped)
        {
            _clipped++;
        }

        var weight = _options.Staleness.Weight(staleness);
        TensorPrimitives.MultiplyAdd(_scratch, (float)weight, _sum, _sum);
        _buffered.Add((staleness, weight));
        _inBuffer[agentId] = _inBuffer.GetValueOrDefault(agentId) + 1;
        _overall[agentId] = _overall.GetValueOrDefault(agentId) + 1;
        return Admission.Accepted;
    }

    /// <summary>
    /// Applies the buffer to <paramref name="global"/> in place: global += η_g · (S + N) / K, with N the DP noise (none
    /// without DP); charges one q = 1 step to the ledger with DP; empties the buffer and advances the version.
    /// </summary>
    /// <exception cref="InvalidOperationException">The buffer is not full.</exception>
    public FlushResult Flush(Span<float> global)
    {
        if (global.Length != _sum.Length)
        {
            throw new ArgumentException($"The global model has {global.Length} values, the buffer {_sum.Length}.", nameof(global));
        }

        if (!IsFull)
        {
            throw new InvalidOperationException($"The buffer holds {Count} of {_options.BufferSize} updates: a flush needs all of them.");
        }

        var stddev = 0.0;
        if (_options.Private)
        {
            stddev = _options.NoiseMultiplier * _options.ClipBound * _options.MaxContributionsPerFlush;
            for (var i = 0; i < _sum.Length; i += 2)
            {
                var (a, b) = _noise!.NextGaussianPair();
                _sum[i] += (float)(a * stddev);
                if (i + 1 < _sum.Length)
                {
                    _sum[i + 1] += (float)(b * stddev);
                }
            }

            // No amplification by sampling: the flush is one full-batch Gaussian mechanism.
            _ledger!.Record(1.0, _options.NoiseMultiplier);
        }

        TensorPrimitives.MultiplyAdd(_sum, (float)(_options.ServerLearningRate / _options.BufferSize), global, global);
        var result = new FlushResult(
            Version + 1,
            _buffered.Count,
            _buffered.Average(b => b.Staleness),
            _buffered.Max(b => b.Staleness),
            _buffered.Average(b => b.Weight),
            _clipped,
            stddev);
        Array.Clear(_sum);
        _buffered.Clear();
        _inBuffer.Clear();
        _clipped = 0;
        Version++;
        return result;
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                return false;
            }
        }

        return true;
    }
}
