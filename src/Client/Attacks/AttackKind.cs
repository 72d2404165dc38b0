namespace Federated.Client.Attacks;

/// <summary>What a Byzantine agent sends instead of its honest update (see <see cref="AttackStage"/>).</summary>
public enum AttackKind
{
    /// <summary>Honest.</summary>
    None,

    /// <summary>−scale·Δ.</summary>
    SignFlip,

    /// <summary>scale·Δ (boosting).</summary>
    Scaling,

    /// <summary>N(0, σ²) in place of Δ.</summary>
    Noise,

    /// <summary>Δ trained on labels y → C − 1 − y (data poisoning).</summary>
    LabelFlip,

    /// <summary>0 (a free rider that still reports its example count).</summary>
    Zero,

    /// <summary>"A little is enough": μ − z·σ of the honest updates.</summary>
    Alie,

    /// <summary>Inner-product manipulation: −ε·μ of the honest updates.</summary>
    Ipm,
}
