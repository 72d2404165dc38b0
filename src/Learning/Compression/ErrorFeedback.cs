using System.Buffers;
using System.Globalization;
using System.Numerics.Tensors;
using Federated.Learning.Checkpoints;
using Federated.Learning.Weights;

namespace Federated.Learning.Compression;

/// <summary>
/// Error feedback for an agent's uploads: what compression dropped is kept as a residual and added to the next
/// delta. <see cref="Encode"/> sends encode(delta + residual) and keeps residual = (delta + residual) − decoded, so over
/// any number of rounds the decoded deltas sum to the true deltas minus the current residual. The residual is saved
/// as a safetensors file so it survives restarts. Not thread-safe.
/// </summary>
public sealed class ErrorFeedback
{
    /// <summary>The safetensors tensor that holds the residual.</summary>
    public const string TensorName = "residual";

    private const string FormatKey = "format";
    private const string FormatValue = "federated.error-feedback.v1";

    private readonly float[] _residual;
    private readonly ArrayBufferWriter<byte> _encoded = new();

    /// <summary>Starts with a zero residual for deltas of <paramref name="length"/> floats.</summary>
    public ErrorFeedback(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _residual = new float[length];
    }

    private ErrorFeedback(float[] residual) => _residual = residual;

    /// <summary>The delta length.</summary>
    public int Length => _residual.Length;

    /// <summary>What compression has dropped so far and not yet sent.</summary>
    public ReadOnlySpan<float> Residual => _residual;

    /// <summary>The residual's L2 norm.</summary>
    public double ResidualNorm => WeightVectors.L2Norm(_residual);

    /// <summary>Encodes <paramref name="delta"/> + residual with <paramref name="codec"/> into <paramref name="output"/> and keeps what it dropped.</summary>
    /// <returns>The bytes written.</returns>
    /// <exception cref="ArgumentException">The delta's length differs from <see cref="Length"/>, or it is not finite (the residual is then unchanged).</exception>
    public int Encode(IDeltaCodec codec, ReadOnlySpan<float> delta, IBufferWriter<byte> output, CodecRandom random)
    {
        ArgumentNullException.ThrowIfNull(codec);
        ArgumentNullException.ThrowIfNull(output);
        if (delta.Length != _residual.Length)
        {
            throw new ArgumentException($"The delta has {delta.Length} floats; this error feedback holds {_residual.Length}.", nameof(delta));
        }

        if (!CodecKernels.AllFinite(delta))
        {
            throw new ArgumentException("The delta holds NaN or an infinity; the residual is left as it was.", nameof(delta));
        }

        TensorPrimitives.Add(delta, _residual, _residual);
        _encoded.ResetWrittenCount();
        var written = codec.Encode(_residual, _encoded, random);
        DeltaCodecs.DecodeAdd(_encoded.WrittenSpan, -1f, _residual);
        output.Write(_encoded.WrittenSpan);
        return written;
    }

    /// <summary>Forgets the residual (e.g. when the model is replaced).</summary>
    public void Reset() => Array.Clear(_residual);

    /// <summary>Saves the residual atomically to a safetensors file.</summary>
    public void Save(string path) => SafeTensorsFile.Write(path, [ToTensor()], Metadata());

    /// <summary>Writes the residual to <paramref name="stream"/> in the safetensors format.</summary>
    public void Save(Stream stream) => SafeTensorsFile.Write(stream, [ToTensor()], Metadata());

    /// <summary>Loads a residual saved by <see cref="Save(string)"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is malformed, not an error-feedback file, or not of <paramref name="expectedLength"/> finite floats.</exception>
    public static ErrorFeedback Load(string path, int expectedLength) => FromContent(SafeTensorsFile.Read(path), expectedLength);

    /// <summary>Loads a residual written by <see cref="Save(Stream)"/>.</summary>
    /// <exception cref="InvalidDataException">As for <see cref="Load(string, int)"/>.</exception>
    public static ErrorFeedback Load(Stream stream, int expectedLength) => FromContent(SafeTensorsFile.Read(stream), expectedLength);

    private SafeTensor ToTensor() => SafeTensor.FromSingles(TensorName, [_residual.Length], _residual);

    private static Dictionary<string, string> Metadata() => new(StringComparer.Ordinal) { [FormatKey] = FormatValue };

    private static ErrorFeedback FromContent(SafeTensorsContent content, int expectedLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expectedLength);
        var source = content.SourceName;
        if (!content.Metadata.TryGetValue(FormatKey, out var format) || format != FormatValue)
        {
            throw new InvalidDataException($"'{source}' is not an error-feedback residual (its metadata lacks {FormatKey}={FormatValue}).");
        }

        if (!content.TryGet(TensorName, out var tensor) || content.Tensors.Count != 1)
        {
            throw new InvalidDataException($"'{source}' must hold exactly one tensor, '{TensorName}'.");
        }

        if (tensor.DType != SafeTensorDType.F32 || tensor.Shape.Count != 1)
        {
            throw new InvalidDataException($"'{source}': the residual must be a 1-D F32 tensor, not {tensor}.");
        }

        if (tensor.ElementCount != expectedLength)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"'{source}' holds a residual of {tensor.ElementCount} floats; this model's deltas have {expectedLength}."));
        }

        var residual = tensor.ToSingles();
        return CodecKernels.AllFinite(residual)
            ? new ErrorFeedback(residual)
            : throw new InvalidDataException($"'{source}' holds a residual with NaN or infinite values.");
    }
}
