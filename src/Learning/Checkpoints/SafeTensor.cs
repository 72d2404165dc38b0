using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Federated.Learning.Checkpoints;

/// <summary>
/// One named tensor of a safetensors file: dtype, shape and raw little-endian, row-major bytes.
/// </summary>
public sealed class SafeTensor
{
    private readonly long[] _shape;

    /// <summary>Creates a tensor over raw little-endian bytes (not copied).</summary>
    /// <param name="name">The tensor name, non-empty, e.g. <c>conv1.weight</c>.</param>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">The dimension sizes, each ≥ 0; empty for a scalar. Copied.</param>
    /// <param name="data">The elements, little-endian, row-major; exactly <c>product(shape) × dtype size</c> bytes.</param>
    /// <exception cref="ArgumentException">The name is empty, a dimension negative, or the data length wrong.</exception>
    public SafeTensor(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape, ReadOnlyMemory<byte> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var elementSize = dtype.SizeOf();
        var count = 1L;
        foreach (var dim in shape)
        {
            if (dim < 0)
            {
                throw new ArgumentException($"Tensor '{name}' has a negative dimension {dim} in its shape [{string.Join(", ", shape.ToArray())}].", nameof(shape));
            }

            count = checked(count * dim);
        }

        if (checked(count * elementSize) != data.Length)
        {
            throw new ArgumentException(
                $"Tensor '{name}' of dtype {dtype.ToHeaderName()} and shape [{string.Join(", ", shape.ToArray())}] needs {count * elementSize} bytes but {data.Length} were given.",
                nameof(data));
        }

        Name = name;
        DType = dtype;
        _shape = shape.ToArray();
        ElementCount = count;
        Data = data;
    }

    /// <summary>The tensor name.</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>The dimension sizes; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>The number of elements: the product of <see cref="Shape"/>.</summary>
    public long ElementCount { get; }

    /// <summary>The raw little-endian, row-major bytes.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Returns a copy of the shape, e.g. for <c>torch.tensor(...).reshape(shape)</c>.</summary>
    public long[] GetShape() => (long[])_shape.Clone();

    /// <summary>Creates an F32 tensor from floats (copied).</summary>
    public static SafeTensor FromSingles(string name, ReadOnlySpan<long> shape, ReadOnlySpan<float> values)
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            var asInts = MemoryMarshal.Cast<byte, int>(bytes.AsSpan());
            BinaryPrimitives.ReverseEndianness(asInts, asInts);
        }

        return new SafeTensor(name, SafeTensorDType.F32, shape, bytes);
    }

    /// <summary>Creates an F64 tensor from doubles (copied).</summary>
    public static SafeTensor FromDoubles(string name, ReadOnlySpan<long> shape, ReadOnlySpan<double> values)
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            var asLongs = MemoryMarshal.Cast<byte, long>(bytes.AsSpan());
            BinaryPrimitives.ReverseEndianness(asLongs, asLongs);
        }

        return new SafeTensor(name, SafeTensorDType.F64, shape, bytes);
    }

    /// <summary>Creates an I64 tensor from longs (copied), e.g. a step counter or BatchNorm's <c>num_batches_tracked</c>.</summary>
    public static SafeTensor FromInt64(string name, ReadOnlySpan<long> shape, ReadOnlySpan<long> values)
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            var asLongs = MemoryMarshal.Cast<byte, long>(bytes.AsSpan());
            BinaryPrimitives.ReverseEndianness(asLongs, asLongs);
        }

        return new SafeTensor(name, SafeTensorDType.I64, shape, bytes);
    }

    /// <summary>Creates an I32 tensor from ints (copied).</summary>
    public static SafeTensor FromInt32(string name, ReadOnlySpan<long> shape, ReadOnlySpan<int> values)
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            var asInts = MemoryMarshal.Cast<byte, int>(bytes.AsSpan());
            BinaryPrimitives.ReverseEndianness(asInts, asInts);
        }

        return new SafeTensor(name, SafeTensorDType.I32, shape, bytes);
    }

    /// <summary>Creates a U8 tensor from bytes (copied).</summary>
    public static SafeTensor FromBytes(string name, ReadOnlySpan<long> shape, ReadOnlySpan<byte> values)
        => new(name, SafeTensorDType.U8, shape, values.ToArray());

    /// <summary>Returns the elements as floats: F32 as is; F64, F16 and BF16 converted.</summary>
    /// <exception cref="InvalidOperationException">The dtype is not a floating-point type.</exception>
    public float[] ToSingles()
    {
        var span = Data.Span;
        var result = new float[ElementCount];
        switch (DType)
        {
            case SafeTensorDType.F32:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(4 * i)..]);
                }

                break;
            case SafeTensorDType.F64:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(span[(8 * i)..]);
                }

                break;
            case SafeTensorDType.F16:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(span[(2 * i)..]);
                }

                break;
            case SafeTensorDType.BF16:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(span[(2 * i)..]) << 16);
                }

                break;
            default:
                throw new InvalidOperationException($"Tensor '{Name}' has dtype {DType.ToHeaderName()}, which is not a floating-point type.");
        }

        return result;
    }

    /// <summary>Returns the elements as longs: I64 as is; I32, I16, I8, U32, U16, U8 and BOOL widened.</summary>
    /// <exception cref="InvalidOperationException">The dtype is floating-point or U64.</exception>
    public long[] ToInt64()
    {
        var span = Data.Span;
        var result = new long[ElementCount];
        switch (DType)
        {
            case SafeTensorDType.I64:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadInt64LittleEndian(span[(8 * i)..]);
                }

                break;
            case SafeTensorDType.I32:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadInt32LittleEndian(span[(4 * i)..]);
                }

                break;
            case SafeTensorDType.U32:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadUInt32LittleEndian(span[(4 * i)..]);
                }

                break;
            case SafeTensorDType.I16:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadInt16LittleEndian(span[(2 * i)..]);
                }

                break;
            case SafeTensorDType.U16:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadUInt16LittleEndian(span[(2 * i)..]);
                }

                break;
            case SafeTensorDType.I8:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = (sbyte)span[i];
                }

                break;
            case SafeTensorDType.U8 or SafeTensorDType.BOOL:
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = span[i];
                }

                break;
            default:
                throw new InvalidOperationException($"Tensor '{Name}' has dtype {DType.ToHeaderName()}, which cannot be read as int64.");
        }

        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {DType.ToHeaderName()}[{string.Join(", ", _shape)}]";
}
