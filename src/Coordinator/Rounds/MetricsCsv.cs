namespace Federated.Coordinator.Rounds;

/// <summary>
/// The per-round CSV. Rows may carry different columns (a round that failed has no aggregation metrics; a private
/// run adds ε): a row with new columns widens the header — earlier rows are kept, their new cells empty, the file
/// rewritten under a temporary name and renamed — and a row missing some columns leaves those cells empty. Nothing
/// written before is ever lost.
/// </summary>
internal static class MetricsCsv
{
    /// <summary>Appends <paramref name="row"/> to the CSV at <paramref name="path"/> (created with a header when absent).</summary>
    public static void Append(string path, IReadOnlyDictionary<string, string> row)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var lines = File.Exists(path) ? File.ReadAllLines(path) : [];
        var header = lines.Length > 0 ? lines[0].Split(',').ToList() : [];
        var added = row.Keys.Where(k => !header.Contains(k)).ToList();
        if (lines.Length == 0 || added.Count > 0)
        {
            var padding = new string(',', added.Count);
            header.AddRange(added);
            var rewritten = new List<string>(lines.Length + 1) { string.Join(',', header) };
            rewritten.AddRange(lines.Skip(1).Where(l => l.Length > 0).Select(l => l + padding));
            rewritten.Add(Format(header, row));
            var temporary = path + ".tmp";
            File.WriteAllLines(temporary, rewritten);
            File.Move(temporary, path, overwrite: true);
            return;
        }

        using var writer = new StreamWriter(path, append: true);
        writer.WriteLine(Format(header, row));
    }

    private static string Format(List<string> header, IReadOnlyDictionary<string, string> row) =>
        string.Join(',', header.Select(column => row.TryGetValue(column, out var value) ? value : ""));
}
