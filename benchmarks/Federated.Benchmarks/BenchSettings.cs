namespace Federated.Benchmarks;

/// <summary>Command-line settings of the benchmark harness.</summary>
internal sealed record BenchSettings(string DataDirectory, int Threads, int Repeats, string? Output)
{
    public static BenchSettings? Parse(string[] args)
    {
        var data = Environment.GetEnvironmentVariable("FEDERATED_DATA") ?? Learning.Data.IdxImageSource.DebianFashionMnistDirectory;
        var threads = 0;
        var repeats = 3;
        string? output = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            try
            {
                switch (args[i])
                {
                    case "--data": data = Next(); break;
                    case "--threads": threads = PositiveOrZero(Next(), "--threads"); break;
                    case "--repeats": repeats = Math.Max(1, PositiveOrZero(Next(), "--repeats")); break;
                    case "--out": output = Next(); break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'. Options: --data DIR, --threads N, --repeats N, --out FILE.");
                }
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"federated-bench: {e.Message}");
                return null;
            }
        }

        return new BenchSettings(data, threads, repeats, output);
    }

    private static int PositiveOrZero(string text, string name) =>
        int.TryParse(text, out var value) && value >= 0 ? value : throw new ArgumentException($"{name} takes a non-negative integer, not '{text}'.");
}
