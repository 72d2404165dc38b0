namespace Federated.Simulations.Fuzz;

/// <summary>What a decoder did with one input.</summary>
internal enum FuzzVerdict
{
    /// <summary>Decoded (and, where the target checks it, consistent).</summary>
    Accepted,

    /// <summary>Refused with the decoder's documented error.</summary>
    Rejected,
}

/// <summary>
/// One decoder the coordinator exposes, driven with arbitrary bytes. A target returns a verdict or throws: an exception
/// that escapes <see cref="RunAsync"/> is a crash (the decoder broke its contract), whatever its type.
/// </summary>
internal interface IFuzzTarget
{
    /// <summary>The target's name in reports and on the command line.</summary>
    string Name { get; }

    /// <summary>The errors that count as a clean refusal, in words (for the report).</summary>
    string Contract { get; }

    /// <summary>
    /// True when the target runs synchronously on the calling thread, so that the engine can measure what one input
    /// allocates; false for targets that cross threads (gRPC calls), whose memory is checked over the whole campaign.
    /// </summary>
    bool MeasuresAllocation { get; }

    /// <summary>How the inputs ended, by kind (gRPC status codes), or null when the verdict says it all.</summary>
    IReadOnlyDictionary<string, int>? Breakdown => null;

    /// <summary>Valid inputs the mutations start from.</summary>
    IReadOnlyList<byte[]> Seeds { get; }

    /// <summary>The most one input of <paramref name="length"/> bytes may allocate (when <see cref="MeasuresAllocation"/>).</summary>
    long AllocationLimit(int length);

    /// <summary>
    /// A structure-aware input built from <paramref name="mutator"/>'s randomness (fields set to extreme values that
    /// byte mutations rarely reach), or null when the target has no generator. The engine asks for one input in four.
    /// </summary>
    byte[]? Generate(Mutator mutator) => null;

    /// <summary>Feeds <paramref name="input"/> to the decoder.</summary>
    ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken);
}
