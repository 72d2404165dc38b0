namespace Federated.Protocol;

/// <summary>The wire protocol's version. Bump it on any incompatible change to <c>protos/</c>.</summary>
public static class ProtocolVersion
{
    /// <summary>The version this build speaks.</summary>
    public const uint Current = 1;
}
