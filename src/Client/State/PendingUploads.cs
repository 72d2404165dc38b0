using System.Text.Json;
using Federated.Learning.Compression;
using Federated.Learning.Checkpoints;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Google.Protobuf;

namespace Federated.Client.State;

/// <summary>What <c>pending/&lt;transfer&gt;/manifest.json</c> says about an upload that is not yet delivered.</summary>
internal sealed record PendingUploadManifest
{
    /// <summary>The manifest's format version.</summary>
    public int Version { get; init; } = 1;

    /// <summary>The upload's transfer id.</summary>
    public required string TransferId { get; init; }

    /// <summary>The task it answers.</summary>
    public required string TaskId { get; init; }

    /// <summary>The task's round.</summary>
    public int Round { get; init; }

    /// <summary>Upload chunk size.</summary>
    public int ChunkBytes { get; init; }

    /// <summary>Payload size.</summary>
    public long Bytes { get; init; }

    /// <summary>When the update was sealed.</summary>
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>
/// A sealed update whose upload or result has not been confirmed: the payload, its upload header, the task result to
/// send after it, and the state the agent had right after sealing it (the error-feedback residual and the strategy
/// state), which is the state to resume from.
/// </summary>
internal sealed class PendingUpload
{
    internal PendingUpload(PendingUploadManifest manifest, SealedPayload payload, UploadHeader header, TaskResult result)
    {
        Manifest = manifest;
        Payload = payload;
        Header = header;
        Result = result;
    }

    /// <summary>The manifest.</summary>
    public PendingUploadManifest Manifest { get; }

    /// <summary>The sealed payload (same bytes, hence same SHA-256, as the interrupted upload).</summary>
    public SealedPayload Payload { get; }

    /// <summary>The upload header.</summary>
    public UploadHeader Header { get; }

    /// <summary>The result to send once the upload is complete.</summary>
    public TaskResult Result { get; }
}

/// <summary>The pending-upload half of the state directory (see <see cref="AgentStateStore"/>).</summary>
internal sealed partial class AgentStateStore
{
    private const string ManifestFile = "manifest.json";
    private const string PayloadFile = "payload.bin";
    private const string HeaderFile = "header.pb";
    private const string ResultFile = "result.pb";

    /// <summary>
    /// Commits a pending upload: every file is written into a hidden folder under <c>pending/</c>, flushed, and the
    /// folder is renamed to the transfer id (the commit point), so a crash leaves either no pending upload or a
    /// complete one. <paramref name="residual"/> and <paramref name="localState"/> are the state after sealing, which
    /// <see cref="RecoverPending"/> puts back in place should the agent die before writing its main files.
    /// </summary>
    public void SavePending(SealedPayload payload, UploadHeader header, TaskResult result, ErrorFeedback? residual, IReadOnlyDictionary<string, float[]>? localState, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(result);
        var final = PendingPath(payload.TransferId);
        var temp = Path.Combine(PendingDirectory, $".{Guid.NewGuid():N}.tmp");
        System.IO.Directory.CreateDirectory(temp);
        try
        {
            WriteAtomically(Path.Combine(temp, PayloadFile), payload.Bytes);
            WriteAtomically(Path.Combine(temp, HeaderFile), header.ToByteArray());
            WriteAtomically(Path.Combine(temp, ResultFile), result.ToByteArray());
            if (residual is not null)
            {
                using var buffer = new MemoryStream();
                residual.Save(buffer);
                WriteAtomically(Path.Combine(temp, ResidualFileName), buffer.ToArray());
            }

            if (localState is { Count: > 0 })
            {
                WriteLocalState(Path.Combine(temp, LocalStateFileName), localState);
            }

            var manifest = new PendingUploadManifest
            {
                TransferId = payload.TransferId,
                TaskId = header.TaskId,
                Round = header.Round,
                ChunkBytes = payload.ChunkBytes,
                Bytes = payload.Bytes.LongLength,
                CreatedAt = now,
            };
            WriteAtomically(Path.Combine(temp, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, AgentStateJsonContext.Default.PendingUploadManifest));
            if (System.IO.Directory.Exists(final))
            {
                System.IO.Directory.Delete(final, recursive: true);
            }

            System.IO.Directory.Move(temp, final);
        }
        finally
        {
            if (System.IO.Directory.Exists(temp))
            {
                System.IO.Directory.Delete(temp, recursive: true);
            }
        }
    }

    /// <summary>
    /// The committed pending uploads, oldest first, after putting each one's saved residual and strategy state back in
    /// place (idempotent). Half-written folders (a crash before the commit) are removed; an unreadable one is reported
    /// and removed.
    /// </summary>
    public IReadOnlyList<PendingUpload> RecoverPending()
    {
        var result = new List<PendingUpload>();
        if (!System.IO.Directory.Exists(PendingDirectory))
        {
            return result;
        }

        foreach (var folder in System.IO.Directory.GetDirectories(PendingDirectory))
        {
            if (Path.GetFileName(folder).StartsWith('.'))
            {
                System.IO.Directory.Delete(folder, recursive: true);
                continue;
            }

            try
            {
                var manifest = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(folder, ManifestFile)), AgentStateJsonContext.Default.PendingUploadManifest)
                    ?? throw new InvalidDataException("the manifest is empty");
                var payload = new SealedPayload(manifest.TransferId, File.ReadAllBytes(Path.Combine(folder, PayloadFile)), manifest.ChunkBytes);
                var header = UploadHeader.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(folder, HeaderFile)));
                var taskResult = TaskResult.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(folder, ResultFile)));
                if (!header.Sha256.Span.SequenceEqual(payload.Sha256))
                {
                    throw new InvalidDataException("the payload does not match its header's SHA-256");
                }

                var residual = Path.Combine(folder, ResidualFileName);
                if (File.Exists(residual))
                {
                    WriteAtomically(ResidualPath, File.ReadAllBytes(residual));
                }

                var localState = Path.Combine(folder, LocalStateFileName);
                if (File.Exists(localState))
                {
                    WriteAtomically(LocalStatePath, File.ReadAllBytes(localState));
                }

                result.Add(new PendingUpload(manifest, payload, header, taskResult));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or JsonException or InvalidProtocolBufferException or ArgumentException or UnauthorizedAccessException)
            {
                ClientStateLog.FileIgnored(_logger, folder, e.Message);
                System.IO.Directory.Delete(folder, recursive: true);
            }
        }

        return result.OrderBy(p => p.Manifest.CreatedAt).ThenBy(p => p.Manifest.Round).ToList();
    }

    /// <summary>The pending uploads' manifests, without reading payloads or touching anything (for <c>status</c>).</summary>
    public IReadOnlyList<PendingUploadManifest> ListPending()
    {
        var result = new List<PendingUploadManifest>();
        if (!System.IO.Directory.Exists(PendingDirectory))
        {
            return result;
        }

        foreach (var folder in System.IO.Directory.GetDirectories(PendingDirectory).Where(f => !Path.GetFileName(f).StartsWith('.')))
        {
            try
            {
                if (JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(folder, ManifestFile)), AgentStateJsonContext.Default.PendingUploadManifest) is { } manifest)
                {
                    result.Add(manifest);
                }
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                // A folder being written or removed right now.
            }
        }

        return result.OrderBy(m => m.CreatedAt).ToList();
    }

    /// <summary>Removes a delivered (or undeliverable) pending upload.</summary>
    public void DeletePending(string transferId)
    {
        var path = PendingPath(transferId);
        if (System.IO.Directory.Exists(path))
        {
            System.IO.Directory.Delete(path, recursive: true);
        }
    }

    private string PendingPath(string transferId)
    {
        ArgumentException.ThrowIfNullOrEmpty(transferId);
        var safe = string.Concat(transferId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        return Path.Combine(PendingDirectory, safe);
    }

    private static void WriteLocalState(string path, IReadOnlyDictionary<string, float[]> tensors)
    {
        var list = tensors.OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => SafeTensor.FromSingles(t.Key, [t.Value.LongLength], t.Value))
            .ToList();
        SafeTensorsFile.Write(path, list, new Dictionary<string, string>(StringComparer.Ordinal) { ["federated.state.version"] = "1" });
    }
}
