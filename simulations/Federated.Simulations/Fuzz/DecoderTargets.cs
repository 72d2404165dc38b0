using Federated.Coordinator.State;
using Federated.Learning.Checkpoints;
using Federated.Learning.Compression;
using Federated.Learning.Data.Partitioning;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;

namespace Federated.Simulations.Fuzz;

/// <summary>
/// The coordinator's decoders that work on bytes alone — what an agent's upload turns into on its way to the aggregate,
/// and what the coordinator reads back from disk when it resumes — as fuzz targets.
/// </summary>
internal static class DecoderTargets
{
    /// <summary>The model length the targets decode into (the coordinator sizes its buffers from the model's layout).</summary>
    public const int ModelLength = 1000;

    /// <summary>The coordinator's default upload limit (<c>Coordinator:MaxPayloadBytes</c>).</summary>
    public const long MaxPayloadBytes = 1L << 30;

    /// <summary>Every offline target.</summary>
    public static IReadOnlyList<IFuzzTarget> All(string scratchDirectory) =>
    [
        new CodecTarget(), new PayloadTarget(), new ScannerTarget(), new ChunksTarget(), new SafeTensorsTarget(), new CheckpointTarget(scratchDirectory),
    ];

    /// <summary>A delta-like vector from <paramref name="seed"/>.</summary>
    internal static float[] Delta(int n, ulong seed)
    {
        var random = new StableRandom(seed);
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            x[i] = (float)(random.Normal() * 1e-3);
        }

        return x;
    }

    /// <summary>A payload as an agent uploads it: the model delta (dense or encoded) and some metadata.</summary>
    internal static Payload UploadPayload(string? codec, ulong seed)
    {
        var payload = new Payload { LayoutFingerprint = "layout-fuzz" };
        var delta = Delta(ModelLength, seed);
        if (codec is null)
        {
            PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, delta, [ModelLength]);
        }
        else
        {
            PayloadCodec.AddEncoded(payload, PayloadCodec.ModelTensor, DeltaCodecs.Parse(codec).EncodeToArray(delta, new CodecRandom(seed)), ModelLength);
        }

        PayloadCodec.AddDense(payload, "control", Delta(16, seed + 1), [4, 4]);
        payload.Metadata["train_loss"] = "0.5";
        return payload;
    }

    /// <summary>The chunks an agent uploads <paramref name="payload"/> in: the first carries the upload header.</summary>
    internal static Chunk[] UploadChunks(Payload payload, int chunkBytes, string taskId)
    {
        var upload = new SealedPayload("upload-fuzz", payload, chunkBytes);
        var chunks = Enumerable.Range(0, upload.ChunkCount).Select(upload.GetChunk).ToArray();
        chunks[0].Header = upload.ToUploadHeader(taskId, 1, 10);
        return chunks;
    }

    /// <summary>
    /// An upload's chunk stream (length-delimited <see cref="Chunk"/> messages) whose header and chunks take extreme or
    /// inconsistent values: declared sizes far from what is sent, chunk counts, sequences out of order or repeated, CRCs
    /// right or wrong, transfer ids that change.
    /// </summary>
    internal static byte[] GenerateUpload(Mutator mutator)
    {
        var real = new byte[mutator.Next(4096)];
        for (var i = 0; i < real.Length; i++)
        {
            real[i] = (byte)mutator.Next(256);
        }

        long Pick(long honest) => mutator.Next(3) == 0 ? mutator.Interesting() : honest;
        var chunks = 1 + mutator.Next(6);
        var header = new UploadHeader
        {
            TaskId = "task-fuzz",
            Round = (int)Pick(1),
            TotalBytes = Pick(real.Length),
            ChunkCount = (int)Pick(chunks),
            Sha256 = ByteString.CopyFrom(mutator.Next(4) == 0 ? new byte[mutator.Next(40)] : System.Security.Cryptography.SHA256.HashData(real)),
            NumExamples = Pick(10),
        };
        using var buffer = new MemoryStream();
        var size = Math.Max(1, (real.Length + chunks - 1) / chunks);
        for (var c = 0; c < chunks + mutator.Next(3); c++)
        {
            var sequence = mutator.Next(5) == 0 ? (int)mutator.Interesting() : c;
            var from = Math.Clamp((long)sequence * size, 0, real.Length);
            var data = real.AsSpan((int)from, (int)Math.Min(size, real.Length - from)).ToArray();
            var chunk = new Chunk
            {
                TransferId = mutator.Next(8) == 0 ? "other" : "upload-fuzz",
                Sequence = sequence,
                Data = ByteString.CopyFrom(data),
                Crc32C = mutator.Next(6) == 0 ? (uint)mutator.Interesting() : Crc32C.Compute(data),
            };
            if (c == 0 || mutator.Next(8) == 0)
            {
                chunk.Header = header;
            }

            chunk.WriteDelimitedTo(buffer);
        }

        return buffer.ToArray();
    }

    /// <summary>Every codec family and a composition, as the coordinator decodes them.</summary>
    private sealed class CodecTarget : IFuzzTarget
    {
        private static readonly string[] Specs =
        [
            "f32", "fp16", "bf16", "q8:block=64", "q4:block=37", "q2:block=16", "sign:block=24", "topk:ratio=0.05+q8",
            "randk:ratio=0.2,seeded=true,scaled=true+f32", "topk:ratio=0.1+sign:block=4",
        ];

        public string Name => "codec";

        public string Contract => "CodecException";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds { get; } = Specs.Select((s, i) => DeltaCodecs.Parse(s).EncodeToArray(Delta(ModelLength, (ulong)i), new CodecRandom((ulong)i))).ToList();

        public long AllocationLimit(int length) => (1 << 20) + (8L * length);

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            // Three ways in (decode, decode-and-add, streamed in pieces) must agree, and what is accepted must be finite.
            var written = new float[ModelLength];
            var added = new float[ModelLength];
            var streamed = new float[ModelLength];
            var outcomes = new[]
            {
                Try(() => DeltaCodecs.Decode(input, written)),
                Try(() => DeltaCodecs.DecodeAdd(input, 1.5f, added)),
                Try(() =>
                {
                    using var stream = new StreamingDeltaDecoder(streamed, 1.5f, input.Length);
                    for (var at = 0; at < input.Length; at += 97)
                    {
                        stream.Append(input.AsMemory(at, Math.Min(97, input.Length - at)));
                    }

                    stream.Complete();
                }),
            };
            if (outcomes.Distinct().Count() != 1)
            {
                throw new InvalidOperationException($"the decoders disagree (decode, add, stream: {string.Join(", ", outcomes)})");
            }

            if (!outcomes[0])
            {
                return ValueTask.FromResult(FuzzVerdict.Rejected);
            }

            if (!written.All(float.IsFinite) || !added.AsSpan().SequenceEqual(streamed))
            {
                throw new InvalidOperationException("an accepted payload decoded to non-finite values, or the streamed sum differs");
            }

            return ValueTask.FromResult(FuzzVerdict.Accepted);
        }

        private static bool Try(Action decode)
        {
            try
            {
                decode();
                return true;
            }
            catch (CodecException)
            {
                return false;
            }
        }
    }

    /// <summary>An uploaded payload received in full: parsed, checked against the layout, the model tensor decoded.</summary>
    private sealed class PayloadTarget : IFuzzTarget
    {
        public string Name => "payload";

        public string Contract => "TransferException, CodecException";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds { get; } = [UploadPayload(null, 1).ToByteArray(), UploadPayload("q8", 2).ToByteArray(), UploadPayload("topk:ratio=0.1+q8", 3).ToByteArray()];

        public long AllocationLimit(int length) => (1 << 20) + (16L * length);

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            try
            {
                var payload = PayloadCodec.Parse(input, "layout-fuzz");
                var model = PayloadCodec.GetTensor(payload, PayloadCodec.ModelTensor, ModelLength);
                var delta = new float[ModelLength];
                if (model.Encoding == TensorEncoding.Codec)
                {
                    DeltaCodecs.Decode(model.Data.Span, delta);
                }
                else
                {
                    PayloadCodec.ReadDense(payload, PayloadCodec.ModelTensor, ModelLength).CopyTo(delta, 0);
                }

                _ = PayloadCodec.ReadAllDense(payload, exclude: PayloadCodec.ModelTensor);
                return ValueTask.FromResult(FuzzVerdict.Accepted);
            }
            catch (Exception e) when (e is TransferException or CodecException)
            {
                return ValueTask.FromResult(FuzzVerdict.Rejected);
            }
        }
    }

    /// <summary>
    /// The streaming path: an upload's bytes framed by <see cref="PayloadStreamScanner"/> as they arrive, the model
    /// tensor's codec bytes folded into an accumulator without a dense copy.
    /// </summary>
    private sealed class ScannerTarget : IFuzzTarget
    {
        public string Name => "stream-scanner";

        public string Contract => "TransferException, CodecException";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds { get; } = [UploadPayload("q8", 4).ToByteArray(), UploadPayload("topk:ratio=0.05+q8", 5).ToByteArray(), UploadPayload("fp16", 6).ToByteArray()];

        public long AllocationLimit(int length) => (1 << 20) + (16L * length);

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            StreamingDeltaDecoder? decoder = null;
            try
            {
                var accumulator = new float[ModelLength];
                var scanner = new PayloadStreamScanner(input.Length, (name, encoding, length) =>
                {
                    if (name != PayloadCodec.ModelTensor)
                    {
                        return null;
                    }

                    if (encoding != TensorEncoding.Codec || decoder is not null)
                    {
                        throw new TransferException("The model tensor cannot be streamed.");
                    }

                    decoder = new StreamingDeltaDecoder(accumulator, 1f, length);
                    return decoder.Append;
                });
                for (var at = 0; at < input.Length; at += 61)
                {
                    scanner.Feed(input.AsMemory(at, Math.Min(61, input.Length - at)));
                }

                if (!scanner.IsComplete || decoder is null)
                {
                    return ValueTask.FromResult(FuzzVerdict.Rejected);
                }

                decoder.Complete();
                return ValueTask.FromResult(FuzzVerdict.Accepted);
            }
            catch (Exception e) when (e is TransferException or CodecException)
            {
                return ValueTask.FromResult(FuzzVerdict.Rejected);
            }
            finally
            {
                decoder?.Dispose();
            }
        }
    }

    /// <summary>
    /// Chunk reassembly: the input is a sequence of length-delimited <see cref="Chunk"/> messages (what an upload stream
    /// carries), fed to a <see cref="ChunkAssembler"/> under the coordinator's default size limit.
    /// </summary>
    private sealed class ChunksTarget : IFuzzTarget
    {
        public string Name => "chunks";

        public string Contract => "TransferException, InvalidProtocolBufferException";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds { get; } =
        [
            GrpcTargets.Encode(UploadChunks(UploadPayload("q8", 7), 1024, "task-fuzz")),
            GrpcTargets.Encode(UploadChunks(UploadPayload(null, 8), 1024, "task-fuzz")),
            GrpcTargets.Encode(UploadChunks(UploadPayload("sign", 9), 1 << 20, "task-fuzz")),
        ];

        // What an upload may cost the coordinator is what it carries, not what its header claims.
        public long AllocationLimit(int length) => (256 << 10) + (8L * length);

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            try
            {
                using var stream = new MemoryStream(input, writable: false);
                ChunkAssembler? assembler = null;
                while (stream.Position < stream.Length)
                {
                    var chunk = Chunk.Parser.ParseDelimitedFrom(stream);
                    if (assembler is null)
                    {
                        if (chunk.Header is not { } header)
                        {
                            return ValueTask.FromResult(FuzzVerdict.Rejected);
                        }

                        assembler = new ChunkAssembler(chunk.TransferId, header.TotalBytes, header.ChunkCount, header.Sha256.Span, MaxPayloadBytes);
                    }
                    else if (chunk.TransferId != assembler.TransferId)
                    {
                        return ValueTask.FromResult(FuzzVerdict.Rejected);
                    }

                    assembler.Accept(chunk);
                }

                return ValueTask.FromResult(assembler is { IsComplete: true } && assembler.Bytes.Length >= 0 ? FuzzVerdict.Accepted : FuzzVerdict.Rejected);
            }
            catch (Exception e) when (e is TransferException or InvalidProtocolBufferException)
            {
                return ValueTask.FromResult(FuzzVerdict.Rejected);
            }
        }

        public byte[]? Generate(Mutator mutator) => GenerateUpload(mutator);
    }

    /// <summary>A safetensors file (model checkpoints, agent state) read from bytes, every float tensor converted.</summary>
    private sealed class SafeTensorsTarget : IFuzzTarget
    {
        public string Name => "safetensors";

        public string Contract => "InvalidDataException";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds { get; } = [Sample(false), Sample(true)];

        public long AllocationLimit(int length) => (256 << 10) + (16L * length);

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            try
            {
                using var stream = new MemoryStream(input, writable: false);
                var content = SafeTensorsFile.Read(stream);
                foreach (var tensor in content.Tensors)
                {
                    if (tensor.DType is SafeTensorDType.F32 or SafeTensorDType.F64 or SafeTensorDType.F16 or SafeTensorDType.BF16)
                    {
                        _ = tensor.ToSingles();
                    }
                    else if (tensor.DType is not SafeTensorDType.U64)
                    {
                        _ = tensor.ToInt64();
                    }
                }

                return ValueTask.FromResult(FuzzVerdict.Accepted);
            }
            catch (InvalidDataException)
            {
                return ValueTask.FromResult(FuzzVerdict.Rejected);
            }
        }

        private static byte[] Sample(bool mixed)
        {
            using var buffer = new MemoryStream();
            var tensors = new List<SafeTensor> { SafeTensor.FromSingles("fc.weight", [10, 20], Delta(200, 11)), SafeTensor.FromSingles("fc.bias", [10], Delta(10, 12)) };
            if (mixed)
            {
                tensors.Add(SafeTensor.FromInt64("counts", [3], [1, 2, 3]));
                tensors.Add(SafeTensor.FromDoubles("fisher", [2, 2], [0.1, 0.2, 0.3, 0.4]));
            }

            SafeTensorsFile.Write(buffer, tensors, new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt", ["round"] = "3" });
            return buffer.ToArray();
        }
    }

    /// <summary>The coordinator's round checkpoint, read back from disk as it is when the coordinator resumes.</summary>
    private sealed class CheckpointTarget(string scratchDirectory) : IFuzzTarget
    {
        private readonly string _path = Path.Combine(scratchDirectory, "fuzz-checkpoint.safetensors");

        public string Name => "checkpoint";

        public string Contract => "InvalidDataException";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds => field ??= [Checkpoint(scratchDirectory, withLedger: false), Checkpoint(scratchDirectory, withLedger: true)];

        public long AllocationLimit(int length) => (1 << 20) + (32L * length);

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken)
        {
            File.WriteAllBytes(_path, input);
            try
            {
                _ = CheckpointFile.Read(_path);
                return ValueTask.FromResult(FuzzVerdict.Accepted);
            }
            catch (InvalidDataException)
            {
                return ValueTask.FromResult(FuzzVerdict.Rejected);
            }
        }

        private static byte[] Checkpoint(string directory, bool withLedger)
        {
            Directory.CreateDirectory(directory);
            var path = Path.Combine(directory, $"seed-{withLedger}.safetensors");
            var checkpoint = new RoundCheckpoint
            {
                RunId = "run-fuzz",
                Round = 3,
                Model = "mlp",
                LayoutFingerprint = "layout-fuzz",
                Global = Delta(30, 21),
                Strategy = "fedadam",
                StrategyState = new Dictionary<string, float[]>(StringComparer.Ordinal) { ["m"] = Delta(30, 22), ["v"] = Delta(30, 23) },
                History =
                [
                    new Dictionary<string, string>(StringComparer.Ordinal) { ["round"] = "1", ["test_accuracy"] = "0.5" },
                    new Dictionary<string, string>(StringComparer.Ordinal) { ["round"] = "2", ["test_accuracy"] = "0.6" },
                ],
                PrivacyLedger = withLedger ? "{\"steps\":[]}" : null,
            };
            CheckpointFile.Write(path, checkpoint, [("fc.weight", [5, 4], 0, 20), ("fc.bias", [10], 20, 10)]);
            var bytes = File.ReadAllBytes(path);
            File.Delete(path);
            return bytes;
        }
    }
}
