using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Federated.Learning.Checkpoints;

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors), so checkpoints
/// can be opened with <c>safetensors.torch.load_file</c>.
/// </summary>
/// <remarks>
/// Layout: an 8-byte little-endian header length N; N bytes of UTF-8 JSON mapping each tensor name to
/// <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets relative to the end of the header),
/// plus an optional <c>"__metadata__"</c> string map; then the data buffer. The writer pads the header
/// with spaces to a multiple of 8 bytes and lays tensors out contiguously in the given order. The reader
/// is as strict as the reference: the tensors must tile the data buffer exactly, with nothing after it.
/// </remarks>
public static class SafeTensorsFile
{
    /// <summary>The largest header accepted (the reference implementation's limit).</summary>
    public const int MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>Writes a safetensors file atomically: to a temporary file in the same directory, then moved over <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">A tensor name is repeated or reserved.</exception>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var fullPath = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        var header = BuildHeader(tensors, metadata, out var list);
        var temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                WriteCore(stream, header, list);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes safetensors content to a stream (left open).</summary>
    /// <exception cref="ArgumentException">A tensor name is repeated or reserved.</exception>
    public static void Write(Stream stream, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var header = BuildHeader(tensors, metadata, out var list);
        WriteCore(stream, header, list);
    }

    /// <summary>Reads a safetensors file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is malformed.</exception>
    public static SafeTensorsContent Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Safetensors file '{path}' does not exist.", path);
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, path);
    }

    /// <summary>Reads safetensors content from a stream, to its end.</summary>
    /// <param name="stream">The stream; read to its end and left open.</param>
    /// <param name="sourceName">The name used in error messages.</param>
    /// <exception cref="InvalidDataException">The content is malformed.</exception>
    public static SafeTensorsContent Read(Stream stream, string sourceName = "<stream>")
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);

        Span<byte> lengthBytes = stackalloc byte[8];
        var got = ReadAtMost(stream, lengthBytes);
        if (got < 8)
        {
            throw Invalid(sourceName, $"it is {got} byte(s) long, shorter than the 8-byte header length");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
        {
            throw Invalid(sourceName, $"the header length {headerLength:N0} exceeds the {MaxHeaderBytes:N0}-byte limit");
        }

        long? remaining = stream.CanSeek ? stream.Length - stream.Position : null;
        if (remaining is { } left && (long)headerLength > left)
        {
            throw Invalid(sourceName, $"the header length {headerLength:N0} is larger than the {left:N0} bytes that follow it");
        }

        var header = new byte[headerLength];
        got = ReadAtMost(stream, header);
        if (got < header.Length)
        {
            throw Invalid(sourceName, $"the header length {headerLength:N0} is larger than the {got:N0} bytes that follow it");
        }

        var (entries, metadata) = ParseHeader(header, sourceName);

        // The tensors must tile [0, dataLength) exactly: sort by offsets and walk.
        var order = new int[entries.Count];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) => entries[a].Begin != entries[b].Begin
            ? entries[a].Begin.CompareTo(entries[b].Begin)
            : entries[a].End.CompareTo(entries[b].End));
        long expected = 0;
        foreach (var index in order)
        {
            var entry = entries[index];
            if (entry.Begin < expected)
            {
                throw Invalid(sourceName, $"tensor '{entry.Name}' at [{entry.Begin}, {entry.End}) overlaps the tensor before it, which ends at {expected}");
            }

            if (entry.Begin > expected)
            {
                throw Invalid(sourceName, $"there is a gap of {entry.Begin - expected} byte(s) in the data buffer before tensor '{entry.Name}' at [{entry.Begin}, {entry.End})");
            }

            expected = entry.End;
        }

        var dataLength = expected;
        if (remaining is { } rem && rem - (long)headerLength < dataLength)
        {
            throw Invalid(sourceName, $"the tensors' data_offsets reach byte {dataLength:N0} but the data buffer holds only {rem - (long)headerLength:N0} bytes");
        }

        if (dataLength > Array.MaxLength)
        {
            throw Invalid(sourceName, $"the data buffer of {dataLength:N0} bytes is larger than one array can hold");
        }

        var data = new byte[dataLength];
        got = ReadAtMost(stream, data);
        if (got < data.Length)
        {
            throw Invalid(sourceName, $"the tensors' data_offsets reach byte {dataLength:N0} but the data buffer holds only {got:N0} bytes");
        }

        Span<byte> probe = stackalloc byte[1];
        if (ReadAtMost(stream, probe) > 0)
        {
            var extra = remaining is { } r ? (r - (long)headerLength - dataLength).ToString("N0", CultureInfo.InvariantCulture) : "some";
            throw Invalid(sourceName, $"{extra} byte(s) of trailing data follow the {dataLength:N0}-byte data buffer the header describes");
        }

        var tensors = new SafeTensor[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            tensors[i] = new SafeTensor(e.Name, e.DType, e.Shape, data.AsMemory((int)e.Begin, (int)(e.End - e.Begin)));
        }

        return new SafeTensorsContent(tensors, metadata, sourceName);
    }

    private static byte[] BuildHeader(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata, out List<SafeTensor> list)
    {
        list = [.. tensors];
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in list)
        {
            ArgumentNullException.ThrowIfNull(tensor, nameof(tensors));
            if (tensor.Name == MetadataKey)
            {
                throw new ArgumentException($"'{MetadataKey}' is reserved and cannot name a tensor.", nameof(tensors));
            }

            if (!names.Add(tensor.Name))
            {
                throw new ArgumentException($"Tensor name '{tensor.Name}' appears more than once.", nameof(tensors));
            }
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false, SkipValidation = false }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            long offset = 0;
            foreach (var tensor in list)
            {
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.DType.ToHeaderName());
                json.WriteStartArray("shape");
                foreach (var dim in tensor.Shape)
                {
                    json.WriteNumberValue(dim);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += tensor.Data.Length;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        var padded = (buffer.Length + 7) & ~7L;
        while (buffer.Length < padded)
        {
            buffer.WriteByte((byte)' ');
        }

        return buffer.ToArray();
    }

    private static void WriteCore(Stream stream, byte[] header, List<SafeTensor> tensors)
    {
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        foreach (var tensor in tensors)
        {
            stream.Write(tensor.Data.Span);
        }
    }

    private static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(byte[] header, string sourceName)
    {
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var sawMetadata = false;
        try
        {
            if (header.Length == 0 || header[0] != (byte)'{')
            {
                throw Invalid(sourceName, $"the header is not a JSON object (it must start with '{{')");
            }

            var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
            Expect(ref reader, JsonTokenType.StartObject, sourceName, "the header");
            while (Next(ref reader, sourceName) != JsonTokenType.EndObject)
            {
                var name = reader.GetString()!;
                if (name == MetadataKey)
                {
                    if (sawMetadata)
                    {
                        throw Invalid(sourceName, $"the header has the key '{MetadataKey}' more than once");
                    }

                    sawMetadata = true;
                    ReadMetadata(ref reader, metadata, sourceName);
                    continue;
                }

                if (name.Length == 0)
                {
                    throw Invalid(sourceName, $"the header has a tensor with an empty name");
                }

                if (!names.Add(name))
                {
                    throw Invalid(sourceName, $"the header has the tensor name '{name}' more than once");
                }

                entries.Add(ReadEntry(ref reader, name, sourceName));
            }

            if (reader.Read())
            {
                throw Invalid(sourceName, $"the header has content after its JSON object");
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{sourceName}' is not a valid safetensors file: the header is not valid UTF-8 JSON: {ex.Message}", ex);
        }
        catch (ArgumentException ex)
        {
            // Invalid UTF-8 inside a string surfaces as an ArgumentException/InvalidOperationException from GetString.
            throw new InvalidDataException($"'{sourceName}' is not a valid safetensors file: the header is not valid UTF-8 JSON: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidDataException($"'{sourceName}' is not a valid safetensors file: the header is not valid UTF-8 JSON: {ex.Message}", ex);
        }

        return (entries, metadata);
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string sourceName)
    {
        Expect(ref reader, JsonTokenType.StartObject, sourceName, $"'{MetadataKey}'");
        while (Next(ref reader, sourceName) != JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            if (Next(ref reader, sourceName) != JsonTokenType.String)
            {
                throw Invalid(sourceName, $"metadata entry '{key}' is not a string (found {reader.TokenType})");
            }

            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw Invalid(sourceName, $"the metadata key '{key}' appears more than once");
            }
        }
    }

    private static Entry ReadEntry(ref Utf8JsonReader reader, string name, string sourceName)
    {
        Expect(ref reader, JsonTokenType.StartObject, sourceName, $"tensor '{name}'");
        string? dtypeName = null;
        List<long>? shape = null;
        List<long>? offsets = null;
        while (Next(ref reader, sourceName) != JsonTokenType.EndObject)
        {
            var field = reader.GetString()!;
            switch (field)
            {
                case "dtype":
                    if (dtypeName is not null)
                    {
                        throw Invalid(sourceName, $"tensor '{name}' has 'dtype' more than once");
                    }

                    if (Next(ref reader, sourceName) != JsonTokenType.String)
                    {
                        throw Invalid(sourceName, $"tensor '{name}' has a 'dtype' that is not a string");
                    }

                    dtypeName = reader.GetString()!;
                    break;
                case "shape":
                    if (shape is not null)
                    {
                        throw Invalid(sourceName, $"tensor '{name}' has 'shape' more than once");
                    }

                    shape = ReadIntegers(ref reader, name, "shape", sourceName);
                    break;
                case "data_offsets":
                    if (offsets is not null)
                    {
                        throw Invalid(sourceName, $"tensor '{name}' has 'data_offsets' more than once");
                    }

                    offsets = ReadIntegers(ref reader, name, "data_offsets", sourceName);
                    break;
                default:
                    Next(ref reader, sourceName);
                    reader.Skip();
                    break;
            }
        }

        if (dtypeName is null || shape is null || offsets is null)
        {
            var missing = dtypeName is null ? "dtype" : shape is null ? "shape" : "data_offsets";
            throw Invalid(sourceName, $"tensor '{name}' has no '{missing}'");
        }

        if (!SafeTensorDTypes.TryParse(dtypeName, out var dtype))
        {
            throw Invalid(sourceName, $"tensor '{name}' has the unknown dtype '{dtypeName}'");
        }

        if (offsets.Count != 2)
        {
            throw Invalid(sourceName, $"tensor '{name}' has {offsets.Count} data_offsets; exactly 2 ([begin, end]) are required");
        }

        var (begin, end) = (offsets[0], offsets[1]);
        if (end < begin)
        {
            throw Invalid(sourceName, $"tensor '{name}' has data_offsets [{begin}, {end}] whose end is before its begin");
        }

        long count = 1;
        foreach (var dim in shape)
        {
            if (dim != 0 && count > long.MaxValue / 8 / dim)
            {
                throw Invalid(sourceName, $"tensor '{name}' has a shape [{string.Join(", ", shape)}] too large to address");
            }

            count *= dim;
        }

        var expected = count * dtype.SizeOf();
        if (end - begin != expected)
        {
            throw Invalid(sourceName,
                $"tensor '{name}' has data_offsets [{begin}, {end}] covering {end - begin} bytes but dtype {dtypeName} × shape [{string.Join(", ", shape)}] needs {expected}");
        }

        return new Entry(name, dtype, [.. shape], begin, end);
    }

    private static List<long> ReadIntegers(ref Utf8JsonReader reader, string name, string field, string sourceName)
    {
        if (Next(ref reader, sourceName) != JsonTokenType.StartArray)
        {
            throw Invalid(sourceName, $"tensor '{name}' has a '{field}' that is not an array of integers");
        }

        var values = new List<long>();
        while (Next(ref reader, sourceName) != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value))
            {
                throw Invalid(sourceName, $"tensor '{name}' has a '{field}' entry that is not an integer");
            }

            if (value < 0)
            {
                throw Invalid(sourceName, $"tensor '{name}' has a negative '{field}' entry {value}");
            }

            values.Add(value);
        }

        return values;
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader, string sourceName)
    {
        if (!reader.Read())
        {
            throw Invalid(sourceName, $"the header JSON ends unexpectedly");
        }

        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string sourceName, string what)
    {
        if (Next(ref reader, sourceName) != type)
        {
            throw Invalid(sourceName, $"{what} is not a JSON object (found {reader.TokenType})");
        }
    }

    private static InvalidDataException Invalid(string sourceName, FormattableString problem)
        => new($"'{sourceName}' is not a valid safetensors file: {problem.ToString(CultureInfo.InvariantCulture)}.");

    private static int ReadAtMost(Stream stream, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = stream.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    private sealed record Entry(string Name, SafeTensorDType DType, long[] Shape, long Begin, long End);
}
