using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace Federated.Learning.Data;

/// <summary>
/// Reads IDX files (the format of MNIST, Fashion-MNIST and EMNIST), plain or gzip-compressed.
/// </summary>
/// <remarks>
/// Layout: four magic bytes <c>0x00 0x00 type ndims</c>, then <c>ndims</c> big-endian int32 dimension
/// sizes, then the data, big-endian, row-major. Compression is detected from the gzip magic bytes
/// <c>0x1f 0x8b</c>, never from the file extension. The reader reads exactly the number of bytes the
/// header declares and rejects files that are truncated or carry trailing data.
/// </remarks>
public static class IdxReader
{
    private const int MaxDimensions = 16;

    /// <summary>Reads an IDX file from disk.</summary>
    /// <param name="path">The file to read, plain or gzip-compressed.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed IDX file.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, path);
    }

    /// <summary>Reads an IDX array from a stream, plain or gzip-compressed, up to the end of the stream.</summary>
    /// <param name="stream">The stream to read; it is read to its end and not disposed.</param>
    /// <param name="sourceName">The name used in error messages (usually the file path).</param>
    /// <exception cref="InvalidDataException">The data is not a well-formed IDX file.</exception>
    public static IdxArray Read(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);

        Span<byte> prefix = stackalloc byte[2];
        var prefixLength = ReadAtMost(stream, prefix, sourceName, compressed: false);
        if (prefixLength == 2 && prefix[0] == 0x1f && prefix[1] == 0x8b)
        {
            using var inner = new PrefixedStream(prefix.ToArray(), stream);
            using var gzip = new GZipStream(inner, CompressionMode.Decompress, leaveOpen: true);
            return ReadIdx(gzip, prefix: default, sourceName, compressed: true);
        }

        return ReadIdx(stream, prefix[..prefixLength], sourceName, compressed: false);
    }

    private static IdxArray ReadIdx(Stream stream, ReadOnlySpan<byte> prefix, string sourceName, bool compressed)
    {
        Span<byte> magic = stackalloc byte[4];
        prefix.CopyTo(magic);
        var got = prefix.Length + ReadAtMost(stream, magic[prefix.Length..], sourceName, compressed);
        if (got < 4)
        {
            throw new InvalidDataException(
                $"'{sourceName}' is not an IDX file: it has only {got} byte(s), fewer than the 4-byte magic number.");
        }

        if (magic[0] != 0 || magic[1] != 0)
        {
            throw new InvalidDataException(
                $"'{sourceName}' is not an IDX file: magic bytes 0x{magic[0]:X2} 0x{magic[1]:X2} must be zero.");
        }

        var type = (IdxElementType)magic[2];
        var elementSize = IdxArray.ElementSize(type);
        if (elementSize == 0)
        {
            throw new InvalidDataException(
                $"'{sourceName}': unsupported IDX element type 0x{magic[2]:X2} (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E).");
        }

        int ndims = magic[3];
        if (ndims == 0 || ndims > MaxDimensions)
        {
            throw new InvalidDataException(
                $"'{sourceName}': the IDX header declares {ndims} dimensions; between 1 and {MaxDimensions} are supported.");
        }

        Span<byte> dimBytes = stackalloc byte[4 * MaxDimensions];
        dimBytes = dimBytes[..(4 * ndims)];
        got = ReadAtMost(stream, dimBytes, sourceName, compressed);
        if (got < dimBytes.Length)
        {
            throw new InvalidDataException(
                $"'{sourceName}' is truncated: the header declares {ndims} dimensions ({dimBytes.Length} bytes) but only {got} byte(s) follow the magic number.");
        }

        var shape = new int[ndims];
        long elements = 1;
        for (var i = 0; i < ndims; i++)
        {
            var size = BinaryPrimitives.ReadInt32BigEndian(dimBytes.Slice(4 * i, 4));
            if (size <= 0)
            {
                throw new InvalidDataException(
                    $"'{sourceName}': dimension {i} has size {size}; every IDX dimension must be positive.");
            }

            shape[i] = size;
            elements *= size; // cannot overflow: checked against Array.MaxLength every step
            if (elements > Array.MaxLength || elements * elementSize > Array.MaxLength)
            {
                throw new InvalidDataException(
                    $"'{sourceName}': the header declares {IdxArray.FormatShape(shape.AsSpan(0, i + 1))}{(i + 1 < ndims ? "×…" : string.Empty)} elements, more than one array can hold ({Array.MaxLength.ToString("N0", CultureInfo.InvariantCulture)} bytes).");
            }
        }

        var data = IdxArray.Allocate(type, (int)elements);
        var bytes = IdxArray.BytesOf(data);
        got = ReadAtMost(stream, bytes, sourceName, compressed);
        if (got < bytes.Length)
        {
            var declared = elementSize == 1
                ? $"{IdxArray.FormatShape(shape)} = {bytes.Length.ToString("N0", CultureInfo.InvariantCulture)} bytes"
                : $"{IdxArray.FormatShape(shape)} {IdxArray.Describe(type)} values × {elementSize} bytes = {bytes.Length.ToString("N0", CultureInfo.InvariantCulture)} bytes";
            throw new InvalidDataException(
                $"'{sourceName}' is truncated: header declares {declared} of data but only {got.ToString("N0", CultureInfo.InvariantCulture)} follow.");
        }

        var trailing = CountRemaining(stream, sourceName, compressed);
        if (trailing > 0)
        {
            throw new InvalidDataException(
                $"'{sourceName}' has trailing data after the {bytes.Length.ToString("N0", CultureInfo.InvariantCulture)} bytes declared by its header ({IdxArray.FormatShape(shape)}): {trailing.ToString("N0", CultureInfo.InvariantCulture)} extra byte(s).");
        }

        if (BitConverter.IsLittleEndian)
        {
            SwapToNative(data);
        }

        return new IdxArray(type, shape, data, sourceName);
    }

    private static void SwapToNative(Array data)
    {
        switch (data)
        {
            case short[] s:
                BinaryPrimitives.ReverseEndianness(s, s);
                break;
            case int[] n:
                BinaryPrimitives.ReverseEndianness(n, n);
                break;
            case float[] f:
                var fi = MemoryMarshal.Cast<float, int>(f.AsSpan());
                BinaryPrimitives.ReverseEndianness(fi, fi);
                break;
            case double[] d:
                var dl = MemoryMarshal.Cast<double, long>(d.AsSpan());
                BinaryPrimitives.ReverseEndianness(dl, dl);
                break;
        }
    }

    /// <summary>Fills <paramref name="buffer"/> as far as the stream allows and returns the byte count read.</summary>
    private static int ReadAtMost(Stream stream, Span<byte> buffer, string sourceName, bool compressed)
    {
        var total = 0;
        try
        {
            while (total < buffer.Length)
            {
                var n = stream.Read(buffer[total..]);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }
        }
        catch (InvalidDataException ex) when (compressed)
        {
            throw new InvalidDataException($"'{sourceName}' is a corrupt gzip stream: {ex.Message}", ex);
        }

        return total;
    }

    private static long CountRemaining(Stream stream, string sourceName, bool compressed)
    {
        Span<byte> scratch = stackalloc byte[4096];
        long total = 0;
        int n;
        while ((n = ReadAtMost(stream, scratch, sourceName, compressed)) > 0)
        {
            total += n;
        }

        return total;
    }

    /// <summary>A read-only stream that yields a few already-consumed bytes before the rest of an inner stream.</summary>
    private sealed class PrefixedStream(byte[] prefix, Stream inner) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_position < prefix.Length)
            {
                var n = Math.Min(buffer.Length, prefix.Length - _position);
                prefix.AsSpan(_position, n).CopyTo(buffer);
                _position += n;
                return n;
            }

            return inner.Read(buffer);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
