using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Federated.Simulations.Reference;

/// <summary>
/// The configuration reference (<c>docs/configuration.md</c>), generated from the options classes themselves: every
/// settable key under <c>Coordinator</c> and <c>Client</c>, its type, its default (read off a fresh options object),
/// its range where the type declares one, and the sentence of its XML documentation. A test compares the committed file
/// with what this writes, so an option added, removed or re-documented without regenerating fails the build.
/// </summary>
public static partial class ConfigurationReference
{
    /// <summary>The command that regenerates the file.</summary>
    public const string Command = "dotnet run -c Release --project simulations/Federated.Simulations -- config-reference --out docs/configuration.md";

    /// <summary>The whole reference, as Markdown.</summary>
    public static string Generate()
    {
        var text = new StringBuilder();
        text.AppendLine("# Configuration reference");
        text.AppendLine();
        text.AppendLine("Generated from the options classes (`CoordinatorOptions`, `ClientOptions` and the sections they hold) and their XML");
        text.AppendLine("documentation; do not edit by hand. Regenerate with:");
        text.AppendLine();
        text.AppendLine("```bash");
        text.AppendLine(Command);
        text.AppendLine("```");
        text.AppendLine();
        text.AppendLine("Every key is set the .NET way: `appsettings.json` (`{ \"Coordinator\": { \"Rounds\": 30 } }`), an environment variable");
        text.AppendLine("(`Coordinator__Rounds=30`) or a command-line flag (`--Coordinator:Rounds 30`). Both programs validate the whole");
        text.AppendLine("configuration on start and refuse a bad value with a sentence naming the key; rules that tie several keys together are");
        text.AppendLine("in those messages, not in this table. `federated-coordinator --help` and `federated-client --help` print the common ones.");
        text.AppendLine();
        Section(text, "Coordinator", typeof(Coordinator.Hosting.CoordinatorOptions));
        Section(text, "Client", typeof(Client.Hosting.ClientOptions));
        return text.ToString().Replace("\r\n", "\n", StringComparison.Ordinal);
    }

    private static void Section(StringBuilder text, string section, Type type)
    {
        text.AppendLine(CultureInfo.InvariantCulture, $"## `{section}`");
        text.AppendLine();
        text.AppendLine("| key | type | default | range | what it does |");
        text.AppendLine("|---|---|---|---|---|");
        foreach (var row in Rows(section, type, Activator.CreateInstance(type), depth: 0))
        {
            text.AppendLine(row);
        }

        text.AppendLine();
    }

    private static IEnumerable<string> Rows(string prefix, Type type, object? instance, int depth)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => p.MetadataToken))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetMethod is not { IsPublic: true })
            {
                continue;
            }

            var key = $"{prefix}:{property.Name}";
            var propertyType = property.PropertyType;
            var settable = property.SetMethod is { IsPublic: true };
            if (!settable && ((!IsCollection(propertyType) && !IsSection(propertyType)) || propertyType.IsArray || propertyType.Name.StartsWith("IReadOnly", StringComparison.Ordinal)))
            {
                continue; // computed from other keys (configuration cannot bind it)
            }

            var value = instance is null ? null : property.GetValue(instance);
            if (value is string path && Environment.GetEnvironmentVariable("FEDERATED_DATA") is { Length: > 0 } data && path == data)
            {
                value = Learning.Data.IdxImageSource.DebianFashionMnistDirectory; // the default without the environment's override
            }

            if (IsSection(propertyType) && depth < 4)
            {
                foreach (var row in Rows(key, propertyType, value ?? TryCreate(propertyType), depth + 1))
                {
                    yield return row;
                }

                continue;
            }

            var doc = XmlDocs(property.DeclaringType!.Assembly).GetValueOrDefault($"P:{Name(property.DeclaringType!)}.{property.Name}", "");
            yield return $"| `{key}` | {TypeName(propertyType)} | {Default(value)} | {Range(property)} | {Escape(doc)} |";
        }
    }

    private static bool IsSection(Type type) =>
        type.IsClass && type != typeof(string) && !IsCollection(type) && type.Namespace is { } ns && ns.StartsWith("Federated.", StringComparison.Ordinal);

    private static bool IsCollection(Type type) => type != typeof(string) && typeof(IEnumerable).IsAssignableFrom(type);

    private static object? TryCreate(Type type) => type.GetConstructor(Type.EmptyTypes) is null ? null : Activator.CreateInstance(type);

    private static string Name(Type type) => (type.FullName ?? type.Name).Replace('+', '.');

    private static string TypeName(Type type)
    {
        var nullable = Nullable.GetUnderlyingType(type);
        if (nullable is not null)
        {
            return TypeName(nullable) + "?";
        }

        if (type.IsEnum)
        {
            return string.Join(" \\| ", Enum.GetNames(type));
        }

        if (IsCollection(type))
        {
            return type.IsGenericType && type.GetGenericArguments().Length == 2 ? "map" : "list";
        }

        return Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => "bool",
            TypeCode.Int32 or TypeCode.Int64 => "integer",
            TypeCode.Double or TypeCode.Single => "number",
            TypeCode.String => "string",
            _ when type == typeof(Uri) => "URI",
            _ => type.Name,
        };
    }

    private static string Default(object? value) => value switch
    {
        null => "",
        string s when s.Length == 0 => "(empty)",
        string s => $"`{Escape(s)}`",
        bool b => b ? "true" : "false",
        IFormattable f when value is double or float => f.ToString("G", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IDictionary d => d.Count == 0 ? "(none)" : string.Join(", ", d.Keys.Cast<object>().Select(k => $"`{k}`")),
        IEnumerable e => e.Cast<object>().Any() ? string.Join(", ", e.Cast<object>().Select(x => $"`{x}`")) : "(none)",
        _ => Escape(value.ToString() ?? ""),
    };

    private static string Range(PropertyInfo property) =>
        property.GetCustomAttribute<RangeAttribute>() is { } range
            ? string.Create(CultureInfo.InvariantCulture, $"{Bound(range.Minimum)} – {Bound(range.Maximum)}")
            : "";

    private static string Bound(object value) => value is double d ? d.ToString("G", CultureInfo.InvariantCulture) : Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"<see (?:cref|langword)=""(?:[A-Z]:)?([^""]+)""\s*/>")]
    private static partial Regex See();

    [GeneratedRegex(@"<paramref name=""([^""]+)""\s*/>")]
    private static partial Regex ParamRef();

    private static readonly Dictionary<Assembly, Dictionary<string, string>> DocsByAssembly = [];

    /// <summary>Member id → summary text of the assembly's XML documentation file (empty when it is missing).</summary>
    private static Dictionary<string, string> XmlDocs(Assembly assembly)
    {
        lock (DocsByAssembly)
        {
            if (!DocsByAssembly.TryGetValue(assembly, out var docs))
            {
                DocsByAssembly[assembly] = docs = ReadXmlDocs(Path.ChangeExtension(assembly.Location, ".xml"));
            }

            return docs;
        }
    }

    private static Dictionary<string, string> ReadXmlDocs(string path)
    {
        var docs = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return docs;
        }

        foreach (var member in XDocument.Load(path, LoadOptions.PreserveWhitespace).Descendants("member"))
        {
            if (member.Attribute("name")?.Value is not { } name || member.Element("summary") is not { } summary)
            {
                continue;
            }

            var inner = string.Concat(summary.Nodes().Select(n => n.ToString()));
            inner = See().Replace(inner, m => $"`{m.Groups[1].Value.Split('.')[^1]}`");
            inner = ParamRef().Replace(inner, m => $"`{m.Groups[1].Value}`");
            inner = inner.Replace("<c>", "`", StringComparison.Ordinal).Replace("</c>", "`", StringComparison.Ordinal);
            inner = Regex.Replace(inner, "<[^>]+>", "");
            docs[name] = Whitespace().Replace(System.Net.WebUtility.HtmlDecode(inner), " ").Trim();
        }

        return docs;
    }
}
