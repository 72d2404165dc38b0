namespace Federated.Learning.Checkpoints;

/// <summary>The element types of the safetensors format; the member names are the header's <c>dtype</c> strings.</summary>
#pragma warning disable CA1707 // Identifiers should not contain underscores: the names mirror the format's strings.
public enum SafeTensorDType
{
    /// <summary>Boolean, one byte per element.</summary>
    BOOL,

    /// <summary>Unsigned 8-bit integer.</summary>
    U8,

    /// <summary>Signed 8-bit integer.</summary>
    I8,

    /// <summary>8-bit float, 5 exponent and 2 mantissa bits.</summary>
    F8_E5M2,

    /// <summary>8-bit float, 4 exponent and 3 mantissa bits.</summary>
    F8_E4M3,

    /// <summary>Signed 16-bit integer.</summary>
    I16,

    /// <summary>Unsigned 16-bit integer.</summary>
    U16,

    /// <summary>IEEE 754 half-precision float.</summary>
    F16,

    /// <summary>bfloat16: the upper half of an IEEE 754 single.</summary>
    BF16,

    /// <summary>Signed 32-bit integer.</summary>
    I32,

    /// <summary>Unsigned 32-bit integer.</summary>
    U32,

    /// <summary>IEEE 754 single-precision float (PyTorch's <c>float32</c>).</summary>
    F32,

    /// <summary>IEEE 754 double-precision float.</summary>
    F64,

    /// <summary>Signed 64-bit integer (PyTorch's <c>int64</c>/<c>long</c>).</summary>
    I64,

    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}
#pragma warning restore CA1707

/// <summary>Helpers for <see cref="SafeTensorDType"/>.</summary>
public static class SafeTensorDTypes
{
    /// <summary>The size in bytes of one element.</summary>
    public static int SizeOf(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.BOOL or SafeTensorDType.U8 or SafeTensorDType.I8 or SafeTensorDType.F8_E5M2 or SafeTensorDType.F8_E4M3 => 1,
        SafeTensorDType.I16 or SafeTensorDType.U16 or SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        SafeTensorDType.I32 or SafeTensorDType.U32 or SafeTensorDType.F32 => 4,
        SafeTensorDType.F64 or SafeTensorDType.I64 or SafeTensorDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The header string of the dtype, e.g. <c>F32</c>.</summary>
    public static string ToHeaderName(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.BOOL => "BOOL",
        SafeTensorDType.U8 => "U8",
        SafeTensorDType.I8 => "I8",
        SafeTensorDType.F8_E5M2 => "F8_E5M2",
        SafeTensorDType.F8_E4M3 => "F8_E4M3",
        SafeTensorDType.I16 => "I16",
        SafeTensorDType.U16 => "U16",
        SafeTensorDType.F16 => "F16",
        SafeTensorDType.BF16 => "BF16",
        SafeTensorDType.I32 => "I32",
        SafeTensorDType.U32 => "U32",
        SafeTensorDType.F32 => "F32",
        SafeTensorDType.F64 => "F64",
        SafeTensorDType.I64 => "I64",
        SafeTensorDType.U64 => "U64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>Parses a header dtype string (exact, case-sensitive, as the reference implementation).</summary>
    public static bool TryParse(string name, out SafeTensorDType dtype)
    {
        dtype = name switch
        {
            "BOOL" => SafeTensorDType.BOOL,
            "U8" => SafeTensorDType.U8,
            "I8" => SafeTensorDType.I8,
            "F8_E5M2" => SafeTensorDType.F8_E5M2,
            "F8_E4M3" => SafeTensorDType.F8_E4M3,
            "I16" => SafeTensorDType.I16,
            "U16" => SafeTensorDType.U16,
            "F16" => SafeTensorDType.F16,
            "BF16" => SafeTensorDType.BF16,
            "I32" => SafeTensorDType.I32,
            "U32" => SafeTensorDType.U32,
            "F32" => SafeTensorDType.F32,
            "F64" => SafeTensorDType.F64,
            "I64" => SafeTensorDType.I64,
            "U64" => SafeTensorDType.U64,
            _ => (SafeTensorDType)(-1),
        };
        return dtype >= 0;
    }
}
