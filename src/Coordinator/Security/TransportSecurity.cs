using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Federated.Coordinator.Hosting;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Security;

/// <summary>Kestrel settings of the coordinator: HTTP/2 windows, limits and TLS (optionally mutual) from <c>Coordinator:*</c>.</summary>
public static class CoordinatorKestrel
{
    /// <summary>
    /// Applies the coordinator's settings to <paramref name="kestrel"/>: HTTP/2 windows, concurrent streams and
    /// connections, and, when <c>Coordinator:Security:Tls:CertificatePath</c> is set, the certificate (and client CA)
    /// of every HTTPS endpoint. Call it before listening (a <c>ListenOptions.UseHttps()</c> takes the defaults set here).
    /// </summary>
    /// <param name="kestrel">The server options.</param>
    /// <param name="configuration">The host configuration.</param>
    /// <param name="http1Ports">Ports whose endpoints speak HTTP/1.1 (Prometheus scrapers, the dashboard's browsers) instead of HTTP/2.</param>
    /// <exception cref="InvalidOperationException">A certificate or key cannot be loaded.</exception>
    public static void Configure(KestrelServerOptions kestrel, IConfiguration configuration, params int[] http1Ports)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(http1Ports);
        var coordinator = configuration.GetSection(CoordinatorOptions.Section);
        var security = coordinator.GetSection("Security").Get<SecuritySettings>() ?? new SecuritySettings();
        kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = listen.IPEndPoint is { } endpoint && http1Ports.Contains(endpoint.Port) ? HttpProtocols.Http1 : HttpProtocols.Http2);
        kestrel.Limits.Http2.InitialConnectionWindowSize = coordinator.GetValue("Http2ConnectionWindowBytes", 16 * 1024 * 1024);
        kestrel.Limits.Http2.InitialStreamWindowSize = coordinator.GetValue("Http2StreamWindowBytes", 16 * 1024 * 1024);
        kestrel.Limits.Http2.MaxStreamsPerConnection = Math.Clamp(security.MaxConcurrentStreams, 1, 100_000);
        kestrel.Limits.MaxConcurrentConnections = security.MaxConnections > 0 ? security.MaxConnections : null;
        if (string.IsNullOrWhiteSpace(security.Tls.CertificatePath))
        {
            return;
        }

        var certificate = LoadCertificate(security.Tls);
        var authorities = string.IsNullOrWhiteSpace(security.Tls.ClientCaPath) ? null : LoadAuthorities(security.Tls.ClientCaPath);
        kestrel.ConfigureHttpsDefaults(https =>
        {
            https.ServerCertificate = certificate;
            if (authorities is not null)
            {
                https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                https.ClientCertificateValidation = (client, _, _) => ChainsTo(client, authorities);
            }
        });
    }

    /// <summary>True when <paramref name="certificate"/> chains to one of <paramref name="authorities"/> (no revocation check) and is valid for client authentication.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection authorities)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(authorities);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // client authentication
        return chain.Build(certificate);
    }

    private static X509Certificate2 LoadCertificate(TlsSettings tls)
    {
        try
        {
            var path = tls.CertificatePath;
            var password = string.IsNullOrEmpty(tls.Password) ? null : tls.Password;
            if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
            {
                return X509CertificateLoader.LoadPkcs12FromFile(path, password);
            }

            var keyPath = string.IsNullOrWhiteSpace(tls.KeyPath) ? null : tls.KeyPath;
            using var pem = password is null ? X509Certificate2.CreateFromPemFile(path, keyPath) : X509Certificate2.CreateFromEncryptedPemFile(path, password, keyPath);
            if (!pem.HasPrivateKey)
            {
                throw new InvalidOperationException($"Coordinator:Security:Tls:CertificatePath '{path}' has no private key: set Coordinator:Security:Tls:KeyPath.");
            }

            // An ephemeral PEM key does not work with SslStream on every platform; a PKCS#12 round trip does.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is CryptographicException or IOException or ArgumentException)
        {
            throw new InvalidOperationException($"Coordinator:Security:Tls: the certificate '{tls.CertificatePath}' cannot be loaded: {e.Message}", e);
        }
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        try
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(path);
            return authorities.Count > 0 ? authorities : throw new InvalidOperationException($"Coordinator:Security:Tls:ClientCaPath '{path}' holds no certificate.");
        }
        catch (Exception e) when (e is CryptographicException or IOException)
        {
            throw new InvalidOperationException($"Coordinator:Security:Tls:ClientCaPath '{path}' cannot be loaded: {e.Message}", e);
        }
    }
}

/// <summary>
/// Refuses gRPC calls that arrive without TLS unless <c>Coordinator:Security:Plaintext</c> allows them (from loopback
/// peers, or from anyone). The health service stays reachable, so that probes work whatever the policy.
/// </summary>
internal sealed class TransportSecurityInterceptor(IOptions<CoordinatorOptions> options, ILogger<TransportSecurityInterceptor> logger) : Interceptor
{
    private readonly PlaintextPolicy _policy = options.Value.Security.PlaintextPolicy;

    /// <inheritdoc />
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Check(context);
        return continuation(request, context);
    }

    /// <inheritdoc />
    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Check(context);
        return continuation(requestStream, context);
    }

    /// <inheritdoc />
    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Check(context);
        return continuation(request, responseStream, context);
    }

    /// <inheritdoc />
    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Check(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        if (http.Request.IsHttps || _policy == PlaintextPolicy.Allow || context.Method.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal))
        {
            return;
        }

        if (_policy == PlaintextPolicy.Loopback && http.Connection.RemoteIpAddress is { } remote && IPAddress.IsLoopback(remote))
        {
            return;
        }

        SecurityLog.PlaintextRefused(logger, context.Method, context.Peer, _policy);
        throw new RpcException(new Status(StatusCode.Unauthenticated, "This coordinator requires TLS: connect with https://."));
    }
}

/// <summary>Healthy once the coordinator has started and until it begins to stop (<c>grpc.health.v1.Health</c> reports SERVING).</summary>
internal sealed class CoordinatorReadiness(IHostApplicationLifetime lifetime) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lifetime.ApplicationStarted.IsCancellationRequested && !lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Healthy("The coordinator is serving.")
            : HealthCheckResult.Unhealthy(lifetime.ApplicationStopping.IsCancellationRequested ? "The coordinator is stopping." : "The coordinator is starting."));
}
