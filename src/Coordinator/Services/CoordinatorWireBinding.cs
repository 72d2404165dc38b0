using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace Federated.Coordinator.Services;

/// <summary>
/// Binds <see cref="CoordinatorService"/> to gRPC (named by the service's <c>BindServiceMethod</c> attribute, so
/// grpc-dotnet's own binder and server reflection use it) with request parsers of its own: a request message that does
/// not parse is answered <c>InvalidArgument</c> with the parser's reason. The generated binding lets the parse error
/// escape as "Unknown: Exception was thrown by handler." for unary calls, which tells an agent nothing. Every RPC of
/// the wire contract is bound, by name, to the service method of the same name; the responses are serialised as the
/// generated code does.
/// </summary>
internal static class CoordinatorWireBinding
{
    /// <summary>The wire contract's service descriptor (server reflection reads it from here).</summary>
    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor => Protocol.V1.Coordinator.Descriptor;

    /// <summary>Adds every RPC of <see cref="Descriptor"/> to <paramref name="binder"/>.</summary>
    /// <remarks>
    /// grpc-dotnet calls this with a null service and binds each method, by name, to the service type's override of the
    /// generated base class's method (hence the parameter's type: the base the overrides are found against).
    /// </remarks>
    public static void BindService(ServiceBinderBase binder, Protocol.V1.Coordinator.CoordinatorBase? service)
    {
        ArgumentNullException.ThrowIfNull(binder);
        foreach (var method in Descriptor.Methods)
        {
            var kind = (method.IsClientStreaming, method.IsServerStreaming) switch
            {
                (false, false) => nameof(BindUnary),
                (false, true) => nameof(BindServerStreaming),
                (true, false) => nameof(BindClientStreaming),
                (true, true) => nameof(BindDuplex),
            };
            typeof(CoordinatorWireBinding)
                .GetMethod(kind, BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(method.InputType.ClrType, method.OutputType.ClrType)
                .Invoke(null, [binder, method]);
        }
    }

    /// <summary>The request marshaller: parses, and turns a parse failure into an <c>InvalidArgument</c> status.</summary>
    internal static Marshaller<T> Request<T>(MessageDescriptor descriptor)
        where T : class, IMessage<T>
    {
        var parser = (MessageParser<T>)descriptor.Parser;
        return new Marshaller<T>(
            Serialize,
            context =>
            {
                try
                {
                    return parser.ParseFrom(context.PayloadAsReadOnlySequence());
                }
                catch (InvalidProtocolBufferException e)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"The {descriptor.Name} message does not parse: {e.Message}"));
                }
            });
    }

    private static Marshaller<T> Response<T>(MessageDescriptor descriptor)
        where T : class, IMessage<T>
    {
        var parser = (MessageParser<T>)descriptor.Parser;
        return new Marshaller<T>(Serialize, context => parser.ParseFrom(context.PayloadAsReadOnlySequence()));
    }

    private static void Serialize<T>(T message, SerializationContext context)
        where T : class, IMessage<T>
    {
        context.SetPayloadLength(message.CalculateSize());
        message.WriteTo(context.GetBufferWriter());
        context.Complete();
    }

    private static Method<TRequest, TResponse> Method<TRequest, TResponse>(MethodDescriptor method, MethodType type)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        new(type, method.Service.FullName, method.Name, Request<TRequest>(method.InputType), Response<TResponse>(method.OutputType));

    private static void BindUnary<TRequest, TResponse>(ServiceBinderBase binder, MethodDescriptor method)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        binder.AddMethod(Method<TRequest, TResponse>(method, MethodType.Unary), (UnaryServerMethod<TRequest, TResponse>?)null);

    private static void BindServerStreaming<TRequest, TResponse>(ServiceBinderBase binder, MethodDescriptor method)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        binder.AddMethod(Method<TRequest, TResponse>(method, MethodType.ServerStreaming), (ServerStreamingServerMethod<TRequest, TResponse>?)null);

    private static void BindClientStreaming<TRequest, TResponse>(ServiceBinderBase binder, MethodDescriptor method)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        binder.AddMethod(Method<TRequest, TResponse>(method, MethodType.ClientStreaming), (ClientStreamingServerMethod<TRequest, TResponse>?)null);

    private static void BindDuplex<TRequest, TResponse>(ServiceBinderBase binder, MethodDescriptor method)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        binder.AddMethod(Method<TRequest, TResponse>(method, MethodType.DuplexStreaming), (DuplexStreamingServerMethod<TRequest, TResponse>?)null);
}
