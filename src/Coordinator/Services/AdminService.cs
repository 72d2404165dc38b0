using System.Net;
using System.Security.Cryptography;
using System.Text;
using Federated.Coordinator.Hosting;
using Federated.Coordinator.Runs;
using Federated.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Services;

/// <summary>
/// The <c>federated.v1.Admin</c> gRPC service: runs (submit, list, inspect, pause, resume, abort) over the
/// <see cref="RunManager"/>. Callers present <c>Coordinator:Admin:Token</c> as a bearer token; without a configured
/// token only loopback callers are served.
/// </summary>
internal sealed partial class AdminService(IOptions<CoordinatorOptions> options, RunManager runs, ILogger<AdminService> logger) : Admin.AdminBase
{
    private readonly byte[] _token = Encoding.UTF8.GetBytes(options.Value.Admin.Token);

    /// <inheritdoc />
    public override Task<RunInfo> SubmitRun(SubmitRunRequest request, ServerCallContext context) =>
        Guard(context, "SubmitRun", () => runs.SubmitAsync(request, context.CancellationToken));

    /// <inheritdoc />
    public override Task<ListRunsReply> ListRuns(ListRunsRequest request, ServerCallContext context) =>
        Guard(context, "ListRuns", () => Task.FromResult(new ListRunsReply { Runs = { runs.List(request.ActiveOnly) } }));

    /// <inheritdoc />
    public override Task<RunInfo> GetRun(RunRequest request, ServerCallContext context) =>
        Guard(context, "GetRun", () => Task.FromResult(runs.Get(request.RunId)));

    /// <inheritdoc />
    public override Task<RunInfo> PauseRun(RunRequest request, ServerCallContext context) =>
        Guard(context, "PauseRun", () => Task.FromResult(runs.Pause(request.RunId)));

    /// <inheritdoc />
    public override Task<RunInfo> ResumeRun(RunRequest request, ServerCallContext context) =>
        Guard(context, "ResumeRun", () => Task.FromResult(runs.Resume(request.RunId)));

    /// <inheritdoc />
    public override Task<RunInfo> AbortRun(AbortRunRequest request, ServerCallContext context) =>
        Guard(context, "AbortRun", () => runs.AbortAsync(request.RunId, request.Reason));

    private async Task<T> Guard<T>(ServerCallContext context, string method, Func<Task<T>> call)
    {
        Authorize(context);
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RunRequestException e)
        {
            LogRefused(logger, method, context.Peer, e.Code, e.Message);
            throw new RpcException(new Status(e.Code, e.Message));
        }
    }

    private void Authorize(ServerCallContext context)
    {
        if (!options.Value.Admin.Enabled)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "The admin service is off (Coordinator:Admin:Enabled is false)."));
        }

        if (_token.Length == 0)
        {
            if (context.GetHttpContext().Connection.RemoteIpAddress is { } remote && IPAddress.IsLoopback(remote))
            {
                return;
            }

            LogRefused(logger, context.Method, context.Peer, StatusCode.PermissionDenied, "not loopback");
            throw new RpcException(new Status(StatusCode.PermissionDenied, "Without Coordinator:Admin:Token the admin service answers callers on this machine only."));
        }

        var header = context.RequestHeaders.GetValue("authorization");
        const string Scheme = "Bearer ";
        var presented = header is not null && header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()) : [];
        if (!CryptographicOperations.FixedTimeEquals(presented, _token))
        {
            LogRefused(logger, context.Method, context.Peer, StatusCode.Unauthenticated, "wrong or missing token");
            throw new RpcException(new Status(StatusCode.Unauthenticated, "Admin calls need 'authorization: Bearer <Coordinator:Admin:Token>'."));
        }
    }

    [LoggerMessage(EventId = 1610, Level = LogLevel.Warning, Message = "Admin call {Method} from {Peer} refused ({Code}): {Reason}")]
    private static partial void LogRefused(ILogger logger, string method, string peer, StatusCode code, string reason);
}
