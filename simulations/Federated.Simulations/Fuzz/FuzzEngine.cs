using System.Diagnostics;

namespace Federated.Simulations.Fuzz;

/// <summary>The outcome of one target's campaign.</summary>
/// <param name="Target">The target's name.</param>
/// <param name="Contract">Its clean refusals, in words.</param>
/// <param name="Inputs">Inputs tried.</param>
/// <param name="Accepted">Inputs decoded.</param>
/// <param name="Rejected">Inputs refused cleanly.</param>
/// <param name="Crashes">Inputs on which the decoder broke its contract.</param>
/// <param name="Hangs">Inputs that ran past the per-input timeout (the campaign of the target stops at the first).</param>
/// <param name="OverAllocations">Inputs that allocated more than the target's bound.</param>
/// <param name="MaxAllocatedBytes">The most one input allocated (-1 when the target does not measure it).</param>
/// <param name="CorpusSize">Corpus entries at the end (seeds plus accepted mutants).</param>
/// <param name="Seconds">Wall time of the campaign.</param>
/// <param name="Findings">The first few crashes, hangs and over-allocations, described, with the saved input's file.</param>
/// <param name="Breakdown">How the inputs ended by kind (gRPC status codes), or null.</param>
internal sealed record FuzzTargetResult(
    string Target,
    string Contract,
    int Inputs,
    int Accepted,
    int Rejected,
    int Crashes,
    int Hangs,
    int OverAllocations,
    long MaxAllocatedBytes,
    int CorpusSize,
    double Seconds,
    IReadOnlyList<string> Findings,
    IReadOnlyDictionary<string, int>? Breakdown)
{
    /// <summary>True when nothing broke.</summary>
    public bool Clean => Crashes == 0 && Hangs == 0 && OverAllocations == 0;
}

/// <summary>
/// Mutational fuzzing of one target at a time: inputs are mutants of the corpus (the target's valid seeds plus every
/// mutant it accepted, so the campaign keeps reaching past the first checks) or, now and then, random bytes. Each
/// input runs under a watchdog; what a synchronous target allocates for it is measured. Inputs that break the
/// contract are saved under the findings directory so they can be replayed.
/// </summary>
internal sealed class FuzzEngine(ulong seed, TimeSpan inputTimeout, string? findingsDirectory)
{
    private const int MaxCorpus = 512;
    private const int MaxFindingsListed = 5;

    /// <summary>Runs <paramref name="inputs"/> inputs against <paramref name="target"/>.</summary>
    public async Task<FuzzTargetResult> RunAsync(IFuzzTarget target, int inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        var mutator = new Mutator(seed ^ Hash(target.Name));
        var corpus = target.Seeds.Select(s => s.ToArray()).ToList();
        var known = new HashSet<ulong>(corpus.Select(c => Fnv64(c)));
        var findings = new List<string>();
        int accepted = 0, rejected = 0, crashes = 0, hangs = 0, over = 0, tried = 0;
        long maxAllocated = target.MeasuresAllocation ? 0 : -1;
        var started = Stopwatch.GetTimestamp();
        for (; tried < inputs && !cancellationToken.IsCancellationRequested; tried++)
        {
            // The seeds themselves first (they must be accepted), then one structure-aware input in four where the
            // target generates them, random bytes one time in 32, and mutants of the corpus otherwise.
            var input = tried < corpus.Count && tried < target.Seeds.Count
                ? corpus[tried]
                : (mutator.Next(4) == 0 ? target.Generate(mutator) : null)
                    ?? (corpus.Count == 0 || mutator.Next(32) == 0
                        ? mutator.RandomBytes(512)
                        : mutator.Mutate(corpus[mutator.Next(corpus.Count)], corpus[mutator.Next(corpus.Count)]));
            var (verdict, error, allocated) = await RunOneAsync(target, input, cancellationToken).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }

            if (allocated > maxAllocated)
            {
                maxAllocated = allocated;
            }

            if (target.MeasuresAllocation && allocated > target.AllocationLimit(input.Length))
            {
                over++;
                Record(findings, target, "allocation", input, $"{allocated:N0} bytes allocated for a {input.Length}-byte input (bound {target.AllocationLimit(input.Length):N0})");
            }

            switch (verdict)
            {
                case FuzzVerdict.Accepted:
                    accepted++;
                    if (known.Add(Fnv64(input)))
                    {
                        if (corpus.Count < MaxCorpus)
                        {
                            corpus.Add(input);
                        }
                        else
                        {
                            corpus[target.Seeds.Count + mutator.Next(MaxCorpus - target.Seeds.Count)] = input;
                        }
                    }

                    break;
                case FuzzVerdict.Rejected:
                    rejected++;
                    break;
                case null when error is TimeoutException:
                    hangs++;
                    Record(findings, target, "hang", input, error.Message);
                    tried++;
                    return Result(stop: true);
                default:
                    crashes++;
                    Record(findings, target, "crash", input, $"{error!.GetType().Name}: {error.Message}");
                    break;
            }
        }

        return Result(stop: false);

        FuzzTargetResult Result(bool stop) => new(
            target.Name,
            target.Contract + (stop ? " (stopped at the first hang)" : string.Empty),
            tried,
            accepted,
            rejected,
            crashes,
            hangs,
            over,
            maxAllocated,
            corpus.Count,
            Stopwatch.GetElapsedTime(started).TotalSeconds,
            findings,
            target.Breakdown?.OrderByDescending(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
    }

    private async Task<(FuzzVerdict? Verdict, Exception? Error, long Allocated)> RunOneAsync(IFuzzTarget target, byte[] input, CancellationToken cancellationToken)
    {
        using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        watchdog.CancelAfter(inputTimeout);
        long allocated = -1;
        var run = target.MeasuresAllocation
            ? Task.Run(
                () =>
                {
                    var before = GC.GetAllocatedBytesForCurrentThread();
                    try
                    {
                        return target.RunAsync(input, watchdog.Token).AsTask().GetAwaiter().GetResult();
                    }
                    finally
                    {
                        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                    }
                },
                CancellationToken.None)
            : target.RunAsync(input, watchdog.Token).AsTask();
        try
        {
            var verdict = await run.WaitAsync(inputTimeout, cancellationToken).ConfigureAwait(false);
            return (verdict, null, allocated);
        }
        catch (TimeoutException e)
        {
            return (null, new TimeoutException($"no answer within {inputTimeout.TotalSeconds:0.#} s", e), allocated);
        }
        catch (OperationCanceledException) when (watchdog.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return (null, new TimeoutException($"no answer within {inputTimeout.TotalSeconds:0.#} s"), allocated);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return (FuzzVerdict.Rejected, null, allocated);
        }
#pragma warning disable CA1031 // Any exception a decoder lets escape is exactly what the fuzzer looks for.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return (null, e, allocated);
        }
    }

    private void Record(List<string> findings, IFuzzTarget target, string kind, byte[] input, string what)
    {
        string? file = null;
        if (findingsDirectory is not null)
        {
            Directory.CreateDirectory(findingsDirectory);
            file = Path.Combine(findingsDirectory, $"{target.Name.Replace(':', '-')}-{kind}-{Fnv64(input):x16}.bin");
            File.WriteAllBytes(file, input);
        }

        if (findings.Count < MaxFindingsListed)
        {
            findings.Add($"{kind}: {what}" + (file is null ? string.Empty : $" (input: {file})"));
        }
    }

    private static ulong Hash(string text) => Fnv64(System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>FNV-1a, 64 bits: tells corpus entries apart (not a security hash).</summary>
    private static ulong Fnv64(ReadOnlySpan<byte> bytes)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }
}
