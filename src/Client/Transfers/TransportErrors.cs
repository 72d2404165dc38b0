using Federated.Protocol.Transfers;
using Grpc.Core;

namespace Federated.Client.Transfers;

/// <summary>Which failures mean "the connection broke" (reconnect or resume) rather than "this can never work".</summary>
internal static class TransportErrors
{
    /// <summary>
    /// True for transport failures: <see cref="RpcException"/> Unavailable, Internal, Unknown, Aborted,
    /// DeadlineExceeded, Unauthenticated (a restarted coordinator no longer knows the token) or Cancelled when
    /// <paramref name="ourToken"/> was not cancelled; <see cref="IOException"/>; <see cref="HttpRequestException"/>.
    /// </summary>
    public static bool IsTransient(Exception exception, CancellationToken ourToken)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception switch
        {
            RpcException { StatusCode: StatusCode.Cancelled } => !ourToken.IsCancellationRequested,
            RpcException rpc => rpc.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown
                or StatusCode.Aborted or StatusCode.DeadlineExceeded or StatusCode.Unauthenticated,
            IOException or HttpRequestException => true,
            _ => false,
        };
    }

    /// <summary>
    /// True when a broken transfer may be resumed: a transient failure, or a chunk the peer or we rejected as corrupt or
    /// out of place (DataLoss, OutOfRange, a <see cref="TransferException"/>).
    /// </summary>
    public static bool IsResumable(Exception exception, CancellationToken ourToken)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return IsTransient(exception, ourToken)
            || exception is RpcException { StatusCode: StatusCode.DataLoss or StatusCode.OutOfRange or StatusCode.ResourceExhausted }
            || exception is TransferException { Code: StatusCode.DataLoss or StatusCode.OutOfRange };
    }

    /// <summary>A short description for logs.</summary>
    public static string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : $"{exception.GetType().Name}: {exception.Message}";
    }
}
