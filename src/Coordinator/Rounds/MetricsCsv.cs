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

    /// <summary>
    /// Makes the CSV at <paramref name="path"/> hold one row per round of <paramref name="history"/> (the rounds the store
    /// completed), in order: a row the CSV already has is kept as written; a missing one is taken from the history; rows
    /// of rounds the history does not have are dropped. The file is rewritten (temporary file, rename) only when that
    /// changes it.
    /// </summary>
    /// <returns>How many rows were restored from the history and how many were dropped.</returns>
    public static (int Restored, int Dropped) Reconcile(string path, IReadOnlyList<IReadOnlyDictionary<string, string>> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var lines = File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Length > 0).ToArray() : [];
        var header = lines.Length > 0 ? lines[0].Split(',').ToList() : [];
        var roundColumn = header.IndexOf("round");
        var existing = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(1))
        {
            var cells = line.Split(',');
            if (roundColumn >= 0 && roundColumn < cells.Length)
            {
                existing[cells[roundColumn]] = header.Zip(cells).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
            }
        }

        var rows = new List<IReadOnlyDictionary<string, string>>();
        var restored = 0;
        foreach (var row in history)
        {
            if (row.TryGetValue("round", out var round) && existing.Remove(round, out var kept))
            {
                rows.Add(kept);
            }
            else
            {
                rows.Add(row);
                restored++;
            }
        }

        var dropped = existing.Count;
        if (restored == 0 && dropped == 0 && lines.Length - 1 == rows.Count)
        {
            return (0, 0);
        }

        foreach (var key in rows.SelectMany(r => r.Keys).Where(k => !header.Contains(k)).Distinct().ToList())
        {
            header.Add(key);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        File.WriteAllLines(temporary, [string.Join(',', header), .. rows.Select(r => Format(header, r))]);
        File.Move(temporary, path, overwrite: true);
        return (restored, dropped);
    }

    private static string Format(List<string> header, IReadOnlyDictionary<string, string> row) =>
        string.Join(',', header.Select(column => row.TryGetValue(column, out var value) ? value : ""));
}
