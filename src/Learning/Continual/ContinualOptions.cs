namespace Federated.Learning.Continual;

/// <summary>How EWC keeps the importance of past experiences.</summary>
public enum EwcMode
{
    /// <summary>One quadratic penalty per past experience, each with its own Fisher diagonal and anchor (Kirkpatrick et al.).</summary>
    Separate,

    /// <summary>
    /// One running penalty (Schwarz et al.'s online EWC): after experience t, F ← γ·F + F_t and the anchor becomes the
    /// weights after t.
    /// </summary>
    Online,
}

/// <summary>Replay buffer policies.</summary>
public enum ReplayPolicy
{
    /// <summary>A uniform sample of everything seen (<see cref="ReservoirBuffer"/>).</summary>
    Reservoir,

    /// <summary>An equal share of the budget per class seen (<see cref="ClassBalancedBuffer"/>).</summary>
    ClassBalanced,

    /// <summary>An equal share of the budget per experience seen (<see cref="ExperienceBalancedBuffer"/>).</summary>
    ExperienceBalanced,
}

/// <summary>Options of <see cref="EwcPlugin"/>.</summary>
public sealed record EwcOptions
{
    /// <summary>λ, the penalty's strength: the loss gains λ/2 · Σ F·(θ − θ*)².</summary>
    public double Lambda { get; init; } = 100;

    /// <summary>Separate penalties per experience, or online EWC.</summary>
    public EwcMode Mode { get; init; } = EwcMode.Separate;

    /// <summary>γ, the decay of the running Fisher in <see cref="EwcMode.Online"/> (1 = no decay).</summary>
    public double Gamma { get; init; } = 1.0;

    /// <summary>Samples of the experience the Fisher diagonal is estimated on (all of them when the experience is smaller).</summary>
    public int FisherSamples { get; init; } = 1000;

    /// <summary>Seeds the choice of those samples.</summary>
    public long Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        ContinualGuards.Require(Lambda >= 0 && double.IsFinite(Lambda), "EWC", nameof(Lambda), "must be non-negative and finite");
        ContinualGuards.Require(Enum.IsDefined(Mode), "EWC", nameof(Mode), "must be separate or online");
        ContinualGuards.Require(Gamma is > 0 and <= 1, "EWC", nameof(Gamma), "must be in (0, 1]");
        ContinualGuards.Require(FisherSamples >= 1, "EWC", nameof(FisherSamples), "must be at least 1");
    }
}

/// <summary>Options of <see cref="ReplayPlugin"/>.</summary>
public sealed record ReplayOptions
{
    /// <summary>Which examples the buffer keeps.</summary>
    public ReplayPolicy Policy { get; init; } = ReplayPolicy.ClassBalanced;

    /// <summary>The memory budget, in examples (all classes and experiences together).</summary>
    public int Budget { get; init; } = 1000;

    /// <summary>Buffer examples concatenated to every training batch (0: as many as the batch has).</summary>
    public int BatchSize { get; init; }

    /// <summary>Seeds the buffer's choices and the replay minibatches.</summary>
    public long Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        ContinualGuards.Require(Enum.IsDefined(Policy), "Replay", nameof(Policy), "must be reservoir, class-balanced or experience-balanced");
        ContinualGuards.Require(Budget >= 1, "Replay", nameof(Budget), "must be at least 1 example");
        ContinualGuards.Require(BatchSize >= 0, "Replay", nameof(BatchSize), "must be 0 (the training batch size) or positive");
    }
}

/// <summary>Options of <see cref="LwfPlugin"/>.</summary>
public sealed record LwfOptions
{
    /// <summary>α, the weight of the distillation term.</summary>
    public double Alpha { get; init; } = 1.0;

    /// <summary>The softmax temperature T (the term is scaled by T², as in Hinton et al.).</summary>
    public double Temperature { get; init; } = 2.0;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        ContinualGuards.Require(Alpha >= 0 && double.IsFinite(Alpha), "LwF", nameof(Alpha), "must be non-negative and finite");
        ContinualGuards.Require(Temperature > 0 && double.IsFinite(Temperature), "LwF", nameof(Temperature), "must be positive and finite");
    }
}

internal static class ContinualGuards
{
    public static void Require(bool condition, string owner, string field, string rule)
    {
        if (!condition)
        {
            throw new ArgumentException($"{owner} option {field} {rule}.");
        }
    }
}
