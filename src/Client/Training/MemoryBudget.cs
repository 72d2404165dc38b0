using Federated.Client.Hosting;
using Federated.Learning.Continual;
using static TorchSharp.torch;

namespace Federated.Client.Training;

/// <summary>The replay buffer's share of the memory budget, as sized at start-up.</summary>
/// <param name="Configured">The example budget configured (<c>Client:Continual:ReplayBudget</c>).</param>
/// <param name="Granted">The example budget the buffer gets (the configured one, or fewer when that does not fit).</param>
/// <param name="ExampleBytes">Bytes one buffered example takes (features, label, experience id).</param>
/// <param name="BudgetBytes">The whole memory budget, in bytes.</param>
internal sealed record ReplaySizing(int Configured, int Granted, long ExampleBytes, long BudgetBytes)
{
    /// <summary>True when the configured budget was clamped.</summary>
    public bool Clamped => Granted < Configured;

    /// <summary>Bytes a full buffer takes.</summary>
    public long ReplayBytes => Granted * ExampleBytes;

    /// <summary>Bytes the replay buffer may take at most.</summary>
    public long ShareBytes => (long)(BudgetBytes * MemoryBudget.ReplayShare);
}

/// <summary>
/// What <c>Client:Resources:MemoryBudgetMB</c> covers and how: the continual-learning replay buffer may take at most
/// <see cref="ReplayShare"/> of the budget (its example budget is clamped to fit at start-up); the rest is for the caches
/// whose size follows the model (EWC terms, the LwF teacher, the error-feedback residual, the reconstructed downlink
/// model) and for pending uploads, which are dropped oldest first when everything together would exceed the budget.
/// </summary>
internal static class MemoryBudget
{
    /// <summary>The largest share of the budget the replay buffer may take.</summary>
    public const double ReplayShare = 0.5;

    /// <summary>Bytes one replayed example takes: its float32 features, plus its label and experience id (int32 each).</summary>
    public static long ReplayExampleBytes(IReadOnlyList<long> sampleShape)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        var elements = sampleShape.Aggregate(1L, (a, b) => checked(a * b));
        return checked((elements * sizeof(float)) + (2 * sizeof(int)));
    }

    /// <summary>
    /// Sizes the replay buffer from the budget: the configured example budget when it fits in
    /// <see cref="ReplayShare"/> of <paramref name="budgetBytes"/>, else as many examples as fit. Throws
    /// <see cref="InvalidOperationException"/> when not even one example fits (the agent then refuses to start).
    /// </summary>
    public static ReplaySizing SizeReplay(long budgetBytes, int configuredExamples, long exampleBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(configuredExamples);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(exampleBytes);
        var share = (long)(budgetBytes * ReplayShare);
        var fits = share / exampleBytes;
        if (fits < 1)
        {
            throw new InvalidOperationException(
                $"Client:Resources:MemoryBudgetMB ({budgetBytes / (1024 * 1024)} MiB) leaves the replay buffer {share} bytes ({ReplayShare:P0} of the budget), " +
                $"less than one example ({exampleBytes} bytes): raise the budget or drop replay from Client:Continual:Methods.");
        }

        return new ReplaySizing(configuredExamples, (int)Math.Min(configuredExamples, fits), exampleBytes, budgetBytes);
    }

    /// <summary>
    /// The continual options the agent runs with under <paramref name="resources"/>: unchanged without a budget or
    /// without replay, else with <c>ReplayBudget</c> sized by <see cref="SizeReplay"/> (returned as well).
    /// </summary>
    public static (ClientContinualOptions Options, ReplaySizing? Sizing) ApplyToContinual(ClientResourceOptions resources, ClientContinualOptions continual, IReadOnlyList<long> sampleShape)
    {
        ArgumentNullException.ThrowIfNull(resources);
        ArgumentNullException.ThrowIfNull(continual);
        if (resources.MemoryBudgetBytes is not { } budget || !continual.Enabled || continual.Replay is null)
        {
            return (continual, null);
        }

        var sizing = SizeReplay(budget, continual.ReplayBudget, ReplayExampleBytes(sampleShape));
        return (sizing.Clamped ? continual.WithReplayBudget(sizing.Granted) : continual, sizing);
    }

    /// <summary>
    /// How many of the pending uploads (<paramref name="pendingBytes"/>, oldest first) to drop, oldest first, so that
    /// they, the new update (<paramref name="newBytes"/>, always kept) and the caches (<paramref name="cacheBytes"/>) fit
    /// <paramref name="budgetBytes"/>; all of them when even that is not enough.
    /// </summary>
    public static int PendingToDrop(long budgetBytes, long cacheBytes, long newBytes, IReadOnlyList<long> pendingBytes)
    {
        ArgumentNullException.ThrowIfNull(pendingBytes);
        var total = cacheBytes + newBytes + pendingBytes.Sum();
        var drop = 0;
        while (total > budgetBytes && drop < pendingBytes.Count)
        {
            total -= pendingBytes[drop++];
        }

        return drop;
    }

    /// <summary>
    /// Bytes the continual state holds or has reserved: the replay buffer at its full budget (it fills up to it), the
    /// EWC terms (Fisher diagonal and anchor) and the LwF teacher.
    /// </summary>
    public static long ContinualBytes(ContinualState state, long replayExampleBytes)
    {
        ArgumentNullException.ThrowIfNull(state);
        long bytes = 0;
        if (state.Replay is { } replay)
        {
            bytes += replay.Budget * replayExampleBytes;
        }

        foreach (var term in state.EwcTerms)
        {
            bytes += term.Fisher.Values.Sum(TensorBytes) + term.Anchor.Values.Sum(TensorBytes);
        }

        if (state.Teacher is { } teacher)
        {
            bytes += teacher.Values.Sum(TensorBytes);
        }

        return bytes;
    }

    private static long TensorBytes(Tensor tensor) => tensor.numel() * tensor.ElementSize;
}
