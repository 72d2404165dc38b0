using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Federated.Client.Hosting;

namespace Federated.Client.Transfers;

/// <summary>TLS of the agent's channel (<c>Client:Tls</c>): a private CA to trust, and a client certificate for mutual TLS.</summary>
internal static class ClientTls
{
    /// <summary>Configures <paramref name="handler"/> from <paramref name="tls"/> and returns it.</summary>
    /// <exception cref="InvalidOperationException">A certificate or key cannot be loaded.</exception>
    public static SocketsHttpHandler Apply(SocketsHttpHandler handler, ClientTlsOptions? tls)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (tls is null)
        {
            return handler;
        }

        try
        {
            if (!string.IsNullOrWhiteSpace(tls.CaCertificatePath))
            {
                var authorities = new X509Certificate2Collection();
                authorities.ImportFromPemFile(tls.CaCertificatePath);
                handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                    certificate is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && ChainsTo(certificate, authorities);
            }

            if (!string.IsNullOrWhiteSpace(tls.CertificatePath))
            {
                var path = tls.CertificatePath;
                using var loaded = path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)
                    ? X509CertificateLoader.LoadPkcs12FromFile(path, null)
                    : X509Certificate2.CreateFromPemFile(path, string.IsNullOrWhiteSpace(tls.KeyPath) ? null : tls.KeyPath);
                handler.SslOptions.ClientCertificates = [X509CertificateLoader.LoadPkcs12(loaded.Export(X509ContentType.Pkcs12), null)];
            }
        }
        catch (Exception e) when (e is CryptographicException or IOException)
        {
            throw new InvalidOperationException($"Client:Tls: a certificate cannot be loaded: {e.Message}", e);
        }

        return handler;
    }

    private static bool ChainsTo(X509Certificate certificate, X509Certificate2Collection authorities)
    {
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }
}
