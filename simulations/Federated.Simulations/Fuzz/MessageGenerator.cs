using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Federated.Simulations.Fuzz;

/// <summary>
/// Structure-aware inputs for the RPCs: messages of the wire contract built from their descriptors, every field set
/// (or left unset) to values byte mutations rarely produce while keeping the message parseable — extreme integers,
/// empty, long and odd strings, byte strings of any length, nested messages, repeated fields and maps, oneofs.
/// </summary>
internal static class MessageGenerator
{
    private const int MaxDepth = 3;

    private static readonly string[] Strings =
    [
        string.Empty, "fuzz-agent", "fuzz-enrol", "task-1", "r1-fuzz-agent", "upload-1", "model-r1", "..", "../../etc/passwd", "ok", "mlp",
        "\0", "é✓𝄞", new string('x', 300), "cpu", "cuda", "session", "enrol", "NaN", "-1",
    ];

    /// <summary>A message of type <paramref name="descriptor"/>.</summary>
    public static IMessage Message(MessageDescriptor descriptor, Mutator random, int depth = 0)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        ArgumentNullException.ThrowIfNull(random);
        var message = descriptor.Parser.ParseFrom(ByteString.Empty);
        foreach (var oneof in descriptor.Oneofs)
        {
            // One case of each oneof (or none).
            var chosen = random.Next(oneof.Fields.Count + 1);
            if (chosen < oneof.Fields.Count)
            {
                Set(message, oneof.Fields[chosen], random, depth);
            }
        }

        foreach (var field in descriptor.Fields.InDeclarationOrder().Where(f => f.ContainingOneof is null))
        {
            if (random.Next(4) != 0)
            {
                Set(message, field, random, depth);
            }
        }

        return message;
    }

    /// <summary>One to <paramref name="max"/> messages, length-delimited (the frame encoding of streaming targets).</summary>
    public static byte[] Stream(MessageDescriptor descriptor, Mutator random, int max)
    {
        using var buffer = new MemoryStream();
        for (var i = 1 + random.Next(max); i > 0; i--)
        {
            Message(descriptor, random).WriteDelimitedTo(buffer);
        }

        return buffer.ToArray();
    }

    private static void Set(IMessage message, FieldDescriptor field, Mutator random, int depth)
    {
        if (field.IsMap)
        {
            var map = (System.Collections.IDictionary)field.Accessor.GetValue(message);
            var entry = field.MessageType;
            for (var i = random.Next(4); i > 0; i--)
            {
                var key = Value(entry.FindFieldByNumber(1), random, depth);
                if (key is not null && !map.Contains(key))
                {
                    map[key] = Value(entry.FindFieldByNumber(2), random, depth);
                }
            }

            return;
        }

        if (field.IsRepeated)
        {
            var list = (System.Collections.IList)field.Accessor.GetValue(message);
            for (var i = random.Next(4); i > 0; i--)
            {
                if (Value(field, random, depth) is { } item)
                {
                    list.Add(item);
                }
            }

            return;
        }

        if (Value(field, random, depth) is { } value)
        {
            field.Accessor.SetValue(message, value);
        }
    }

    private static object? Value(FieldDescriptor field, Mutator random, int depth) => field.FieldType switch
    {
        FieldType.String => Strings[random.Next(Strings.Length)],
        FieldType.Bytes => ByteString.CopyFrom(random.Next(3) == 0 ? new byte[random.Next(2) == 0 ? 32 : 64] : random.RandomBytes(random.Next(2) == 0 ? 40 : 4096)),
        FieldType.Bool => random.Next(2) == 0,
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => (int)random.Interesting(),
        FieldType.UInt32 or FieldType.Fixed32 => (uint)random.Interesting(),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => random.Interesting(),
        FieldType.UInt64 or FieldType.Fixed64 => (ulong)random.Interesting(),
        FieldType.Double => Doubles[random.Next(Doubles.Length)],
        FieldType.Float => (float)Doubles[random.Next(Doubles.Length)],
        FieldType.Enum => Enum.ToObject(field.EnumType.ClrType, random.Next(8) == 0 ? 1000 : field.EnumType.Values[random.Next(field.EnumType.Values.Count)].Number),
        FieldType.Message when depth < MaxDepth => Message(field.MessageType, random, depth + 1),
        _ => null,
    };

    private static readonly double[] Doubles = [0, -0.0, 1, -1, 0.5, 1e-300, 1e300, double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.MaxValue, double.Epsilon];
}
