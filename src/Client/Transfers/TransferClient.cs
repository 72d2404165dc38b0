using Federated.Client.Agent;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Grpc.Core;

namespace Federated.Client.Transfers;

/// <summary>
/// Moves payloads with the coordinator: <c>Download</c> into a <see cref="ChunkAssembler"/> (resuming from
/// <see cref="ChunkAssembler.NextSequence"/>), and <c>Upload</c> as one client stream whose first chunk carries the
/// header (resuming from <c>GetUploadState.next_sequence</c>, header repeated on the resumed stream's first chunk).
/// </summary>
internal sealed class TransferClient
{
    private readonly Protocol.V1.Coordinator.CoordinatorClient _client;
    private readonly Metadata _headers;
    private readonly int _maxRetries;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>Creates the client; <paramref name="headers"/> carry the session's bearer token.</summary>
    public TransferClient(Protocol.V1.Coordinator.CoordinatorClient client, Metadata headers, int maxRetries, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetries);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _client = client;
        _headers = headers;
        _maxRetries = maxRetries;
        _time = time;
        _logger = logger;
    }

    /// <summary>Downloads and checks the payload <paramref name="reference"/> points to.</summary>
    /// <exception cref="TransferException">The reference is impossible, or the transfer kept failing.</exception>
    public async Task<byte[]> DownloadAsync(PayloadRef reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (string.IsNullOrEmpty(reference.TransferId))
        {
            throw new TransferException("The task carries no model payload to download.");
        }

        var assembler = new ChunkAssembler(reference.TransferId, reference.TotalBytes, reference.ChunkCount, reference.Sha256.Span, Array.MaxLength);
        var started = _time.GetTimestamp();
        var delays = new ReconnectBackoff(0.25, 5);
        for (var retry = 0; ; retry++)
        {
            try
            {
                using var call = _client.Download(
                    new DownloadRequest { TransferId = reference.TransferId, StartSequence = assembler.NextSequence },
                    _headers,
                    cancellationToken: cancellationToken);
                await foreach (var chunk in call.ResponseStream.ReadAllAsync(cancellationToken))
                {
                    if (assembler.Accept(chunk))
                    {
                        var seconds = _time.GetElapsedTime(started).TotalSeconds;
                        AgentLog.Downloaded(_logger, reference.TransferId, reference.TotalBytes, seconds);
                        return assembler.Bytes;
                    }
                }

                throw new IOException($"The download of '{reference.TransferId}' ended at chunk {assembler.NextSequence} of {assembler.ChunkCount}.");
            }
            catch (Exception e) when (retry < _maxRetries && TransportErrors.IsResumable(e, cancellationToken))
            {
                AgentLog.TransferRetry(_logger, "Download", reference.TransferId, TransportErrors.Describe(e), assembler.NextSequence, retry + 1, _maxRetries);
                await Task.Delay(delays.NextDelay(), _time, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Uploads <paramref name="payload"/> with <paramref name="header"/>, resuming after breaks. With
    /// <paramref name="resume"/> (an upload an earlier session or process began) it first asks the coordinator how much
    /// it has: nothing more is sent when the upload is complete, and it goes on at the coordinator's next chunk otherwise.
    /// </summary>
    public async Task UploadAsync(SealedPayload payload, UploadHeader header, CancellationToken cancellationToken, bool resume = false)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(header);
        var started = _time.GetTimestamp();
        var delays = new ReconnectBackoff(0.25, 5);
        var start = 0;
        if (resume)
        {
            var next = await QueryResumePointAsync(payload.TransferId, cancellationToken);
            if (next is null)
            {
                LogUploaded(payload, started);
                return;
            }

            start = Math.Clamp(next.Value, 0, payload.ChunkCount - 1);
        }
        for (var retry = 0; ; retry++)
        {
            try
            {
                if (await SendAsync(payload, header, start, cancellationToken) is { } incompleteAt)
                {
                    start = incompleteAt;
                    throw new IOException($"The coordinator reports upload '{payload.TransferId}' incomplete at chunk {incompleteAt} of {payload.ChunkCount}.");
                }

                LogUploaded(payload, started);
                return;
            }
            catch (Exception e) when (retry < _maxRetries && TransportErrors.IsResumable(e, cancellationToken))
            {
                await Task.Delay(delays.NextDelay(), _time, cancellationToken);
                var resumeAt = await QueryResumePointAsync(payload.TransferId, cancellationToken);
                if (resumeAt is null)
                {
                    LogUploaded(payload, started);
                    return;
                }

                start = Math.Clamp(resumeAt.Value, 0, payload.ChunkCount - 1);
                AgentLog.TransferRetry(_logger, "Upload", payload.TransferId, TransportErrors.Describe(e), start, retry + 1, _maxRetries);
            }
        }
    }

    private void LogUploaded(SealedPayload payload, long started)
    {
        var seconds = _time.GetElapsedTime(started).TotalSeconds;
        AgentLog.Uploaded(_logger, payload.TransferId, payload.Bytes.LongLength, payload.ChunkCount, seconds);
    }

    /// <summary>Sends chunks <paramref name="start"/>… in one stream; null when the coordinator reports the upload complete, else its next sequence.</summary>
    private async Task<int?> SendAsync(SealedPayload payload, UploadHeader header, int start, CancellationToken cancellationToken)
    {
        using var call = _client.Upload(_headers, cancellationToken: cancellationToken);
        try
        {
            for (var sequence = start; sequence < payload.ChunkCount; sequence++)
            {
                var chunk = payload.GetChunk(sequence);
                if (sequence == start)
                {
                    chunk.Header = header;
                }

                await call.RequestStream.WriteAsync(chunk, cancellationToken);
            }

            await call.RequestStream.CompleteAsync();
        }
        catch (InvalidOperationException)
        {
            // The call already finished (the coordinator failed it): its status says why.
            await call.ResponseAsync;
            throw new IOException($"The coordinator ended upload '{payload.TransferId}' early.");
        }

        var reply = await call.ResponseAsync;
        return reply.Complete ? null : reply.NextSequence;
    }

    /// <summary>Where to resume: null when the upload is already complete; 0 when unknown or the query failed (resent chunks are ignored by the receiver).</summary>
    private async Task<int?> QueryResumePointAsync(string transferId, CancellationToken cancellationToken)
    {
        try
        {
            var state = await _client.GetUploadStateAsync(new UploadStateRequest { TransferId = transferId }, _headers, cancellationToken: cancellationToken);
            if (state.Complete)
            {
                return null;
            }

            return state.Known ? state.NextSequence : 0;
        }
        catch (Exception e) when (TransportErrors.IsTransient(e, cancellationToken))
        {
            return 0;
        }
    }
}
