using System.Globalization;
using System.Runtime.InteropServices;

namespace Federated.Learning.Data;

/// <summary>The element type of an IDX file, as stored in the third magic byte.</summary>
public enum IdxElementType : byte
{
    /// <summary>Unsigned 8-bit integer (0x08): the type of MNIST, Fashion-MNIST and EMNIST files.</summary>
    UnsignedByte = 0x08,

    /// <summary>Signed 8-bit integer (0x09).</summary>
    SignedByte = 0x09,

    /// <summary>Big-endian signed 16-bit integer (0x0B).</summary>
    Integer16 = 0x0B,

    /// <summary>Big-endian signed 32-bit integer (0x0C).</summary>
    Integer32 = 0x0C,

    /// <summary>Big-endian IEEE 754 single-precision float (0x0D).</summary>
    SinglePrecision = 0x0D,

    /// <summary>Big-endian IEEE 754 double-precision float (0x0E).</summary>
    DoublePrecision = 0x0E,
}

/// <summary>
/// An n-dimensional array read from an IDX file. The data is held in a typed array in native byte
/// order: <c>byte[]</c> for <see cref="IdxElementType.UnsignedByte"/>, <c>sbyte[]</c>, <c>short[]</c>,
/// <c>int[]</c>, <c>float[]</c> or <c>double[]</c> for the other types.
/// </summary>
public sealed class IdxArray
{
    private readonly Array _data;
    private readonly int[] _shape;

    internal IdxArray(IdxElementType elementType, int[] shape, Array data, string sourceName)
    {
        ElementType = elementType;
        _shape = shape;
        _data = data;
        SourceName = sourceName;
        ElementsPerItem = 1;
        for (var i = 1; i < shape.Length; i++)
        {
            ElementsPerItem *= shape[i];
        }
    }

    /// <summary>The element type declared by the file's magic number.</summary>
    public IdxElementType ElementType { get; }

    /// <summary>The dimension sizes declared by the header, outermost first.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>The number of items: the size of the first dimension.</summary>
    public int Count => _shape[0];

    /// <summary>The number of elements in one item: the product of every dimension but the first (1 for 1-D files).</summary>
    public int ElementsPerItem { get; }

    /// <summary>The total number of elements.</summary>
    public int Length => _data.Length;

    /// <summary>The path or name the array was read from, used in error messages.</summary>
    public string SourceName { get; }

    /// <summary>Returns the raw data of an unsigned-byte file without copying.</summary>
    /// <exception cref="InvalidOperationException">The file's element type is not <see cref="IdxElementType.UnsignedByte"/>.</exception>
    public byte[] AsBytes() => ElementType == IdxElementType.UnsignedByte ? (byte[])_data : throw new InvalidOperationException(
        $"'{SourceName}' holds {Describe(ElementType)} elements, not unsigned bytes.");

    /// <summary>Returns the data as a read-only span of <typeparamref name="T"/> without copying.</summary>
    /// <typeparam name="T">The element type matching <see cref="ElementType"/>: byte, sbyte, short, int, float or double.</typeparam>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> does not match <see cref="ElementType"/>.</exception>
    public ReadOnlySpan<T> AsSpan<T>()
        where T : unmanaged
        => _data.GetType() == typeof(T[])
            ? (T[])_data
            : throw new InvalidOperationException(
                $"'{SourceName}' holds {Describe(ElementType)} elements, which cannot be viewed as {typeof(T).Name}.");

    /// <summary>Converts every element to <see cref="float"/> (no scaling: a pixel 255 becomes 255f).</summary>
    public float[] ToSingle()
    {
        // Switch on ElementType, not on the array's type: the runtime lets byte[] pass as sbyte[] and back.
        var result = new float[_data.Length];
        switch (ElementType)
        {
            case IdxElementType.UnsignedByte:
                var b = (byte[])_data;
                for (var i = 0; i < b.Length; i++)
                {
                    result[i] = b[i];
                }

                break;
            case IdxElementType.SignedByte:
                var sb = (sbyte[])_data;
                for (var i = 0; i < sb.Length; i++)
                {
                    result[i] = sb[i];
                }

                break;
            case IdxElementType.Integer16:
                var s = (short[])_data;
                for (var i = 0; i < s.Length; i++)
                {
                    result[i] = s[i];
                }

                break;
            case IdxElementType.Integer32:
                var n = (int[])_data;
                for (var i = 0; i < n.Length; i++)
                {
                    result[i] = n[i];
                }

                break;
            case IdxElementType.SinglePrecision:
                ((float[])_data).CopyTo(result, 0);
                break;
            case IdxElementType.DoublePrecision:
                var d = (double[])_data;
                for (var i = 0; i < d.Length; i++)
                {
                    result[i] = (float)d[i];
                }

                break;
        }

        return result;
    }

    /// <summary>Reads a 1-D label file of an integer type as non-negative <see cref="int"/> class labels.</summary>
    /// <exception cref="InvalidOperationException">
    /// The array is not 1-D, holds floating-point elements, or contains a negative label.
    /// </exception>
    public int[] ToInt32Labels()
    {
        if (_shape.Length != 1)
        {
            throw new InvalidOperationException(
                $"'{SourceName}' is not a label file: it has {_shape.Length} dimensions ({FormatShape(_shape)}) but labels must be 1-D.");
        }

        var result = new int[_data.Length];
        switch (ElementType)
        {
            case IdxElementType.UnsignedByte:
                var b = (byte[])_data;
                for (var i = 0; i < b.Length; i++)
                {
                    result[i] = b[i];
                }

                return result;
            case IdxElementType.SignedByte:
                var sb = (sbyte[])_data;
                for (var i = 0; i < sb.Length; i++)
                {
                    result[i] = sb[i];
                }

                break;
            case IdxElementType.Integer16:
                var s = (short[])_data;
                for (var i = 0; i < s.Length; i++)
                {
                    result[i] = s[i];
                }

                break;
            case IdxElementType.Integer32:
                ((int[])_data).CopyTo(result, 0);
                break;
            default:
                throw new InvalidOperationException(
                    $"'{SourceName}' holds {Describe(ElementType)} elements; labels must be an integer type.");
        }

        for (var i = 0; i < result.Length; i++)
        {
            if (result[i] < 0)
            {
                throw new InvalidOperationException(
                    $"'{SourceName}' has a negative label {result[i].ToString(CultureInfo.InvariantCulture)} at index {i.ToString(CultureInfo.InvariantCulture)}.");
            }
        }

        return result;
    }

    /// <summary>Returns the shape as <c>60000×28×28</c>.</summary>
    public override string ToString() => $"{Describe(ElementType)} {FormatShape(_shape)}";

    internal static string FormatShape(ReadOnlySpan<int> shape)
    {
        var parts = new string[shape.Length];
        for (var i = 0; i < shape.Length; i++)
        {
            parts[i] = shape[i].ToString(CultureInfo.InvariantCulture);
        }

        return string.Join('×', parts);
    }

    internal static string Describe(IdxElementType type) => type switch
    {
        IdxElementType.UnsignedByte => "ubyte",
        IdxElementType.SignedByte => "sbyte",
        IdxElementType.Integer16 => "int16",
        IdxElementType.Integer32 => "int32",
        IdxElementType.SinglePrecision => "float32",
        IdxElementType.DoublePrecision => "float64",
        _ => "0x" + ((byte)type).ToString("X2", CultureInfo.InvariantCulture),
    };

    internal static int ElementSize(IdxElementType type) => type switch
    {
        IdxElementType.UnsignedByte or IdxElementType.SignedByte => 1,
        IdxElementType.Integer16 => 2,
        IdxElementType.Integer32 or IdxElementType.SinglePrecision => 4,
        IdxElementType.DoublePrecision => 8,
        _ => 0,
    };

    internal static Array Allocate(IdxElementType type, int length) => type switch
    {
        IdxElementType.UnsignedByte => new byte[length],
        IdxElementType.SignedByte => new sbyte[length],
        IdxElementType.Integer16 => new short[length],
        IdxElementType.Integer32 => new int[length],
        IdxElementType.SinglePrecision => new float[length],
        IdxElementType.DoublePrecision => new double[length],
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported IDX element type."),
    };

    /// <summary>The raw bytes of an array made by <see cref="Allocate"/>.</summary>
    internal static Span<byte> BytesOf(Array data) => data switch
    {
        sbyte[] sb => MemoryMarshal.AsBytes(sb.AsSpan()),
        byte[] b => b,
        short[] s => MemoryMarshal.AsBytes(s.AsSpan()),
        int[] n => MemoryMarshal.AsBytes(n.AsSpan()),
        float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
        double[] d => MemoryMarshal.AsBytes(d.AsSpan()),
        _ => throw new ArgumentException("Unsupported array type.", nameof(data)),
    };
}
