using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using Federated.Learning.Compression;
using Federated.Learning.Data.Partitioning;

namespace Federated.Benchmarks;

/// <summary>
/// <c>federated-bench codecs</c>: encode and decode throughput of every delta codec on one thread (MB/s of float32
/// input, MB = 10⁶ bytes) over a 10M-element Gaussian delta, medians of the repeats, and each codec's size.
/// </summary>
internal static class CodecBenchmark
{
    private const int Elements = 10_000_000;
    private const int ChunkBytes = 1 << 20;

    private static readonly string[] Specs =
    [
        "f32", "fp16", "bf16", "q8", "q4", "q2", "sign",
        "topk:ratio=0.01", "topk:ratio=0.01+q8", "randk:ratio=0.01", "randk:ratio=0.01+q8",
    ];

    public static int Run(string[] args)
    {
        var settings = BenchSettings.Parse(args);
        if (settings is null)
        {
            return 2;
        }

        var report = new StringBuilder();
        void Say(string line)
        {
            Console.WriteLine(line);
            report.AppendLine(line);
        }

        var delta = new float[Elements];
        var random = new StableRandom(1);
        for (var i = 0; i < delta.Length; i++)
        {
            delta[i] = (float)(random.Normal() * 1e-3);
        }

        Say("# Codec benchmarks");
        Say("");
        Say(Inv($"- {Elements:N0}-element float32 delta (N(0, 10⁻³)), one thread, median of {settings.Repeats} runs after a warm-up; MB/s = 10⁶ bytes of float32 input per second"));
        Say(Inv($"- {Environment.ProcessorCount} logical cores, {RuntimeInformation.ProcessArchitecture}, .NET {Environment.Version}, {RuntimeInformation.OSDescription}; Vector256 accelerated: {Vector256.IsHardwareAccelerated}, Vector512: {Vector512.IsHardwareAccelerated}"));
        Say("- decode: into a dense vector; decode-add: accumulator += w × decoded (the coordinator's fold); stream: decode-add fed in 1 MiB chunks");
        Say("");
        Say("| codec | payload bytes | ratio vs f32 | encode MB/s | decode MB/s | decode-add MB/s | stream MB/s |");
        Say("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var spec in Specs)
        {
            Say(Row(DeltaCodecs.Parse(spec), delta, settings.Repeats));
        }

        Say("");
        Say($"Command: `{$"dotnet run -c Release --project benchmarks/Federated.Benchmarks -- codecs {string.Join(' ', args)}".TrimEnd()}`");
        if (settings.Output is { } path)
        {
            File.WriteAllText(path, report.ToString());
            Console.WriteLine($"wrote {path}");
        }

        return 0;
    }

    private static string Row(IDeltaCodec codec, float[] delta, int repeats)
    {
        var writer = new ArrayBufferWriter<byte>(codec.GetMaxEncodedLength(delta.Length));
        var random = new CodecRandom(7);
        var decoded = new float[delta.Length];
        var accumulator = new float[delta.Length];
        var encode = new List<double>();
        var decode = new List<double>();
        var add = new List<double>();
        var stream = new List<double>();
        for (var r = 0; r <= repeats; r++)
        {
            writer.ResetWrittenCount();
            encode.Add(Seconds(() => codec.Encode(delta, writer, random)));
            var payload = writer.WrittenMemory;
            decode.Add(Seconds(() => DeltaCodecs.Decode(payload.Span, decoded)));
            add.Add(Seconds(() => DeltaCodecs.DecodeAdd(payload.Span, 0.5f, accumulator)));
            stream.Add(Seconds(() =>
            {
                using var decoder = new StreamingDeltaDecoder(accumulator, 0.5f, payload.Length);
                for (var start = 0; start < payload.Length; start += ChunkBytes)
                {
                    decoder.Append(payload.Slice(start, Math.Min(ChunkBytes, payload.Length - start)));
                }

                decoder.Complete();
            }));
        }

        var bytes = writer.WrittenCount;
        return Inv($"| `{codec.Spec}` | {bytes:N0} | {4.0 * delta.Length / bytes:F1}× | {Rate(encode, delta.Length)} | {Rate(decode, delta.Length)} | {Rate(add, delta.Length)} | {Rate(stream, delta.Length)} |");
    }

    private static double Seconds(Action action)
    {
        var start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>The median rate over the runs after the first (the warm-up).</summary>
    private static string Rate(List<double> seconds, int elements)
    {
        var runs = seconds.Skip(1).Order().ToList();
        var median = runs.Count % 2 == 1 ? runs[runs.Count / 2] : (runs[(runs.Count / 2) - 1] + runs[runs.Count / 2]) / 2;
        return (4.0 * elements / 1e6 / median).ToString("F0", CultureInfo.InvariantCulture);
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
