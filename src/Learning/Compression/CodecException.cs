namespace Federated.Learning.Compression;

/// <summary>
/// An encoded delta was rejected: unknown codec or version, an element count that does not match the destination,
/// a truncated or over-long payload, out-of-range or repeated indices, a bad scale, a reserved code or a non-finite
/// value. Decoders throw this, and nothing else, for any bytes they are given.
/// </summary>
public sealed class CodecException : FormatException
{
    /// <summary>Creates the exception with a default message.</summary>
    public CodecException()
        : base("The encoded delta is malformed.")
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public CodecException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and the exception that caused it.</summary>
    public CodecException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
