using System.Globalization;

namespace Federated.Learning.Compression;

/// <summary>Parses codec specs (grammar on <see cref="DeltaCodecs"/>) with one-sentence errors.</summary>
internal static class CodecSpec
{
    private const string Known = "f32, fp16, bf16, q8, q4, q2, sign, topk, randk";

    public static IDeltaCodec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var stages = spec.Split('+');
        if (stages.Length > 2)
        {
            throw Error(spec, "it has more than two stages; only a sparse codec and the dense codec of its values compose, e.g. 'topk:ratio=0.01+q8'");
        }

        var first = ParseStage(spec, stages[0]);
        if (first is SparseStage sparse)
        {
            var values = stages.Length == 2 ? ParseStage(spec, stages[1]) : new DenseStage(Float32Codec.Instance);
            return values is DenseStage dense
                ? sparse.Build(dense.Codec)
                : throw Error(spec, "the values of a sparse codec must use a dense codec (f32, fp16, bf16, q8, q4, q2 or sign), not another sparse one");
        }

        var codec = ((DenseStage)first).Codec;
        return stages.Length == 1
            ? codec
            : throw Error(spec, $"'{codec.Name}' takes no inner codec; only topk and randk are followed by '+' and the codec of their values");
    }

    private static object ParseStage(string spec, string text)
    {
        var stage = text.Trim();
        if (stage.Length == 0)
        {
            throw Error(spec, "it has an empty stage");
        }

        var colon = stage.IndexOf(':', StringComparison.Ordinal);
        var name = (colon < 0 ? stage : stage[..colon]).Trim().ToLowerInvariant();
        var parameters = ParseParameters(spec, name, colon < 0 ? null : stage[(colon + 1)..]);
        object result = name switch
        {
            "f32" => new DenseStage(Float32Codec.Instance),
            "fp16" => new DenseStage(Float16Codec.Instance),
            "bf16" => new DenseStage(BFloat16Codec.Instance),
            "q8" or "q4" or "q2" => new DenseStage(new QuantizedCodec(name[1] - '0', parameters.Int("block", QuantizedCodec.DefaultBlockSize, 1, QuantizedCodec.MaxBlockSize))),
            "sign" => new DenseStage(new SignCodec(parameters.Int("block", 0, 1, int.MaxValue))),
            "topk" => SparseTopK(parameters),
            "randk" => SparseRandomK(parameters),
            _ => throw Error(spec, $"unknown codec '{name}' (known: {Known})"),
        };
        parameters.EnsureAllUsed();
        return result;
    }

    private static SparseStage SparseTopK(Parameters parameters)
    {
        var ratio = parameters.Ratio();
        return new SparseStage(values => new TopKCodec(ratio, values));
    }

    private static SparseStage SparseRandomK(Parameters parameters)
    {
        var ratio = parameters.Ratio();
        var seeded = parameters.Bool("seeded", true);
        var scaled = parameters.Bool("scaled", true);
        return new SparseStage(values => new RandomKCodec(ratio, seeded, scaled, values));
    }

    private static Parameters ParseParameters(string spec, string name, string? text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (text is not null)
        {
            foreach (var item in text.Split(','))
            {
                var equals = item.IndexOf('=', StringComparison.Ordinal);
                if (equals < 0)
                {
                    throw Error(spec, $"'{name}' parameter '{item.Trim()}' is not key=value");
                }

                var key = item[..equals].Trim().ToLowerInvariant();
                if (!values.TryAdd(key, item[(equals + 1)..].Trim()))
                {
                    throw Error(spec, $"'{name}' sets '{key}' twice");
                }
            }
        }

        return new Parameters(spec, name, values);
    }

    private static ArgumentException Error(string spec, string detail) =>
        new($"Invalid codec spec '{spec}': {detail}.", nameof(spec));

    private sealed record DenseStage(DenseCodec Codec);

    private sealed record SparseStage(Func<DenseCodec, SparseCodec> Build);

    /// <summary>A stage's key=value pairs; reading one marks it used, and unused keys are an error.</summary>
    private sealed class Parameters(string spec, string name, Dictionary<string, string> values)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public int Int(string key, int fallback, int min, int max)
        {
            if (!TryGet(key, out var text))
            {
                return fallback;
            }

            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                ? value
                : throw Error(spec, $"'{name}' {key} must be an integer from {min} to {max}, not '{text}'");
        }

        public double Ratio()
        {
            if (!TryGet("ratio", out var text))
            {
                throw Error(spec, $"'{name}' needs ratio=R, the fraction of coordinates kept, in (0, 1]");
            }

            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && value <= 1
                ? value
                : throw Error(spec, $"'{name}' ratio must be a number in (0, 1], not '{text}'");
        }

        public bool Bool(string key, bool fallback)
        {
            if (!TryGet(key, out var text))
            {
                return fallback;
            }

            return text.ToLowerInvariant() switch
            {
                "true" => true,
                "false" => false,
                _ => throw Error(spec, $"'{name}' {key} must be true or false, not '{text}'"),
            };
        }

        public void EnsureAllUsed()
        {
            foreach (var key in values.Keys)
            {
                if (!_used.Contains(key))
                {
                    var takes = Takes(name);
                    throw Error(spec, $"'{name}' has no parameter '{key}' ({(takes.Length == 0 ? "it takes none" : "it takes " + takes)})");
                }
            }
        }

        private bool TryGet(string key, out string text)
        {
            _used.Add(key);
            return values.TryGetValue(key, out text!);
        }

        private static string Takes(string name) => name switch
        {
            "q8" or "q4" or "q2" or "sign" => "block",
            "topk" => "ratio",
            "randk" => "ratio, seeded, scaled",
            _ => "",
        };
    }
}
