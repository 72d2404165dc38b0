using Grpc.Core;

namespace Federated.Protocol.Transfers;

/// <summary>A payload or chunk that breaks the protocol; carries the gRPC status the peer should see.</summary>
public sealed class TransferException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TransferException(StatusCode code, string message) : base(message) => Code = code;

    /// <summary>Creates the exception (InvalidArgument).</summary>
    public TransferException(string message) : this(StatusCode.InvalidArgument, message) { }

    /// <summary>Creates the exception (InvalidArgument).</summary>
    public TransferException() : this(StatusCode.InvalidArgument, "Invalid transfer.") { }

    /// <summary>Creates the exception (InvalidArgument).</summary>
    public TransferException(string message, Exception innerException) : base(message, innerException) => Code = StatusCode.InvalidArgument;

    /// <summary>The gRPC status code for the peer.</summary>
    public StatusCode Code { get; }

    /// <summary>The exception as an <see cref="RpcException"/>.</summary>
    public RpcException ToRpcException() => new(new Status(Code, Message));
}
