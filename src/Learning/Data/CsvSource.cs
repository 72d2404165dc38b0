using System.Globalization;

namespace Federated.Learning.Data;

/// <summary>Which columns of a CSV file are the features and which is the label.</summary>
public sealed record CsvSchema
{
    /// <summary>The label column's header name.</summary>
    public required string Label { get; init; }

    /// <summary>The feature columns' header names, in order; empty: every column but the label.</summary>
    public IReadOnlyList<string> Features { get; init; } = [];

    /// <summary>
    /// The class names in class order; a label is then one of these names (or its index). Empty: labels are whole
    /// numbers 0 … C−1 when every label is one, otherwise the distinct names in ordinal order.
    /// </summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
}

/// <summary>
/// Reads a tabular data set from a CSV file with a header row: numeric feature columns and a label column, as a
/// source of samples shaped [1, 1, F] (what the <c>mlp</c> model takes). Fields are separated by commas (or the
/// given separator) and may be double-quoted. Every problem is an <see cref="InvalidDataException"/> that names the
/// file, the row (1-based line number, the header being line 1) and the column.
/// </summary>
public static class CsvSource
{
    /// <summary>Loads <paramref name="path"/> with <paramref name="schema"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The header, a row, a value or a label is invalid.</exception>
    public static InMemorySource Load(string path, CsvSchema schema, char separator = ',')
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(schema);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"CSV file '{path}' does not exist.", path);
        }

        using var reader = new StreamReader(path);
        var header = reader.ReadLine() is { } first ? Split(first.TrimStart('\uFEFF'), separator, path, 1) : throw Bad(path, 1, "the file is empty; it must start with a header row");
        var columns = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < header.Count; i++)
        {
            var name = header[i].Trim();
            if (name.Length == 0)
            {
                throw Bad(path, 1, $"column {i + 1} of the header has no name");
            }

            if (!columns.TryAdd(name, i))
            {
                throw Bad(path, 1, $"column '{name}' appears twice in the header");
            }
        }

        if (!columns.TryGetValue(schema.Label, out var labelColumn))
        {
            throw Bad(path, 1, $"the header has no label column '{schema.Label}' (columns: {string.Join(", ", header)})");
        }

        var featureNames = schema.Features.Count > 0 ? schema.Features : header.Select(h => h.Trim()).Where(h => h != schema.Label).ToList();
        var featureColumns = new int[featureNames.Count];
        for (var i = 0; i < featureNames.Count; i++)
        {
            if (!columns.TryGetValue(featureNames[i], out featureColumns[i]))
            {
                throw Bad(path, 1, $"the header has no feature column '{featureNames[i]}'");
            }

            if (featureColumns[i] == labelColumn)
            {
                throw Bad(path, 1, $"column '{featureNames[i]}' cannot be both a feature and the label");
            }
        }

        if (featureColumns.Length == 0)
        {
            throw Bad(path, 1, "there are no feature columns");
        }

        var features = new List<float>();
        var labelTexts = new List<(string Text, int Line)>();
        var line = 1;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Trim().Length == 0)
            {
                continue;
            }

            var fields = Split(text, separator, path, line);
            if (fields.Count != header.Count)
            {
                throw Bad(path, line, $"the row has {fields.Count} fields, the header {header.Count}");
            }

            for (var i = 0; i < featureColumns.Length; i++)
            {
                var field = fields[featureColumns[i]].Trim();
                if (!float.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !float.IsFinite(value))
                {
                    throw Bad(path, line, $"column '{featureNames[i]}' holds '{field}', which is not a finite number");
                }

                features.Add(value);
            }

            var label = fields[labelColumn].Trim();
            if (label.Length == 0)
            {
                throw Bad(path, line, $"the label column '{schema.Label}' is empty");
            }

            labelTexts.Add((label, line));
        }

        if (labelTexts.Count == 0)
        {
            throw Bad(path, line, "the file has a header but no data rows");
        }

        var (labels, numClasses) = MapLabels(labelTexts, schema, path);
        if (numClasses < 2)
        {
            throw Bad(path, labelTexts[^1].Line, $"the label column '{schema.Label}' holds a single class; a classifier needs at least two");
        }

        return new InMemorySource($"{Path.GetFileName(path)}", features.ToArray(), labels, [1, 1, featureColumns.Length], numClasses);
    }

    private static (int[] Labels, int NumClasses) MapLabels(List<(string Text, int Line)> texts, CsvSchema schema, string path)
    {
        var labels = new int[texts.Count];
        if (schema.Classes.Count > 0)
        {
            var index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < schema.Classes.Count; i++)
            {
                index[schema.Classes[i]] = i;
            }

            for (var i = 0; i < texts.Count; i++)
            {
                var (text, line) = texts[i];
                if (index.TryGetValue(text, out var c))
                {
                    labels[i] = c;
                }
                else if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out c) && c < schema.Classes.Count)
                {
                    labels[i] = c;
                }
                else
                {
                    throw Bad(path, line, $"label '{text}' is not one of the classes {string.Join(", ", schema.Classes)}");
                }
            }

            return (labels, schema.Classes.Count);
        }

        if (texts.All(t => int.TryParse(t.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
        {
            var max = 0;
            for (var i = 0; i < texts.Count; i++)
            {
                var value = int.Parse(texts[i].Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                if (value < 0)
                {
                    throw Bad(path, texts[i].Line, $"label {value} is negative; numeric labels are classes 0, 1, 2, ...");
                }

                if (value > 100_000)
                {
                    throw Bad(path, texts[i].Line, $"label {value} is too large for a class index (at most 100000)");
                }

                labels[i] = value;
                max = Math.Max(max, value);
            }

            return (labels, max + 1);
        }

        var names = texts.Select(t => t.Text).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var map = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);
        for (var i = 0; i < texts.Count; i++)
        {
            labels[i] = map[texts[i].Text];
        }

        return (labels, names.Count);
    }

    /// <summary>Splits one CSV line; double quotes enclose fields that hold the separator, and "" is a quote.</summary>
    private static List<string> Split(string line, char separator, string path, int lineNumber)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"' && field.ToString().Trim().Length == 0)
            {
                field.Clear();
                quoted = true;
            }
            else if (c == separator)
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else
            {
                field.Append(c);
            }
        }

        if (quoted)
        {
            throw Bad(path, lineNumber, "a quoted field is not closed");
        }

        fields.Add(field.ToString());
        return fields;
    }

    private static InvalidDataException Bad(string path, int line, string reason) => new($"{path}, row {line}: {reason}.");
}
