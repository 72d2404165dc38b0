using Federated.Client.Hosting;

namespace Federated.Client.Attacks;

/// <summary>
/// The malicious stage of a Byzantine agent, between local training and upload. The agent runs its real training
/// loop and then, from <see cref="ClientAttackOptions.StartRound"/> on, uploads instead of its delta Δ:
/// <list type="bullet">
/// <item><c>signflip</c>: −scale·Δ; <c>scaling</c>: scale·Δ; <c>zero</c>: 0 (the reported example count is unchanged: a free rider);</item>
/// <item><c>noise</c>: N(0, σ²) per coordinate, replacing Δ (not added to it), seeded by the agent id, the round and
/// <see cref="ClientAttackOptions.Seed"/>;</item>
/// <item><c>labelflip</c>: Δ itself, but trained on labels y → C − 1 − y (<see cref="PoisonsData"/>);</item>
/// <item><c>alie</c>: μ − z·σ and <c>ipm</c>: −ε·μ, coordinate-wise over reference updates: the round's honest deltas
/// from an <see cref="IColludingChannel"/> (omniscient) or the agent's own bootstrap runs (estimated).</item>
/// </list>
/// Before the start round, and for <c>none</c>, the delta passes unchanged. The stage is pure apart from the
/// options; the agent session feeds it.
/// </summary>
internal sealed class AttackStage
{
    private readonly ulong _seed;

    /// <summary>The stage of an honest agent.</summary>
    public static AttackStage Honest { get; } = new(new ClientAttackOptions(), "");

    /// <summary>The stage <paramref name="options"/> describe, for agent <paramref name="agentId"/> (which seeds the noise).</summary>
    public AttackStage(ClientAttackOptions options, string agentId)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(agentId);
        Options = options;
        Kind = options.ParsedKind;
        var hash = 14695981039346656037UL;
        foreach (var c in agentId)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        _seed = hash ^ unchecked((ulong)options.Seed * 0x9E37_79B9_7F4A_7C15UL);
    }

    /// <summary>The settings.</summary>
    public ClientAttackOptions Options { get; }

    /// <summary>The attack (<see cref="AttackKind.None"/> for an honest agent).</summary>
    public AttackKind Kind { get; }

    /// <summary>True for a Byzantine agent (whether or not its attack has started).</summary>
    public bool IsAttacker => Kind != AttackKind.None;

    /// <summary>How long an omniscient attacker waits for the honest updates.</summary>
    public TimeSpan Wait => TimeSpan.FromSeconds(Options.WaitSeconds);

    /// <summary>True when the agent attacks in <paramref name="round"/>.</summary>
    public bool IsActive(int round) => IsAttacker && round >= Options.StartRound;

    /// <summary>True when <paramref name="round"/> trains on flipped labels.</summary>
    public bool PoisonsData(int round) => IsActive(round) && Kind == AttackKind.LabelFlip;

    /// <summary>True when <paramref name="round"/>'s attack needs the honest agents' deltas (omniscient ALIE, IPM).</summary>
    public bool NeedsHonestUpdates(int round) => IsActive(round) && Kind is AttackKind.Alie or AttackKind.Ipm && Options.IsOmniscient;

    /// <summary>The extra local runs on bootstrap resamples that <paramref name="round"/> needs (estimated ALIE, IPM), else 0.</summary>
    public int EstimateRuns(int round) => IsActive(round) && Kind is AttackKind.Alie or AttackKind.Ipm && !Options.IsOmniscient ? Options.EstimateRuns : 0;

    /// <summary>The seed of <paramref name="round"/>'s draws.</summary>
    public ulong Seed(int round) => _seed ^ unchecked((ulong)round * 0xD1B5_4A32_D192_ED03UL);

    /// <summary>
    /// What the agent uploads in <paramref name="round"/> instead of <paramref name="delta"/>; <paramref name="reference"/>
    /// holds the honest (or estimated) updates that ALIE and IPM need and is ignored by the other kinds.
    /// Returns <paramref name="delta"/> itself when the agent does not attack in this round.
    /// </summary>
    /// <exception cref="ArgumentException">ALIE or IPM without reference updates, or of another length.</exception>
    public float[] Apply(int round, float[] delta, IReadOnlyList<ReadOnlyMemory<float>> reference)
    {
        ArgumentNullException.ThrowIfNull(delta);
        ArgumentNullException.ThrowIfNull(reference);
        if (!IsActive(round))
        {
            return delta;
        }

        if (Kind is AttackKind.Alie or AttackKind.Ipm && reference.Any(r => r.Length != delta.Length))
        {
            throw new ArgumentException($"The reference updates must have the delta's length {delta.Length}.", nameof(reference));
        }

        return Kind switch
        {
            AttackKind.SignFlip => UpdateAttacks.SignFlip(delta, Options.ResolvedScale),
            AttackKind.Scaling => UpdateAttacks.Scale(delta, Options.ResolvedScale),
            AttackKind.Noise => UpdateAttacks.Gaussian(delta.Length, Options.Sigma, Seed(round)),
            AttackKind.Zero => new float[delta.Length],
            AttackKind.Alie => UpdateAttacks.Alie(reference, Options.ResolvedZ),
            AttackKind.Ipm => UpdateAttacks.Ipm(reference, Options.Epsilon),
            _ => delta,
        };
    }
}
