using System.Globalization;
using System.Net;

namespace Federated.Coordinator.Hosting;

/// <summary>
/// The read-only web dashboard (the <c>Coordinator:Dashboard</c> section): a page at <see cref="Path"/> that shows the
/// run live (rounds, agents online, accuracy and loss, bytes per round, ε spent, rejected updates) and the JSON it
/// polls, <c>{Path}/api/state</c>. Off by default. It changes nothing, but it shows agent ids and the run's figures:
/// serve it on a loopback <see cref="Url"/>, or give it an <see cref="AccessToken"/>.
/// </summary>
public sealed class DashboardSettings
{
    /// <summary>Serve the dashboard (default false).</summary>
    public bool Enabled { get; set; }

    /// <summary>Where the page lives (default <c>/dashboard</c>; the JSON is under <c>{Path}/api/</c>).</summary>
    public string Path { get; set; } = "/dashboard";

    /// <summary>
    /// An extra listen address for browsers, e.g. <c>http://127.0.0.1:8080</c>: it speaks HTTP/1.1 and serves only the
    /// dashboard (and, on the same port, the Prometheus path). Empty (the default): the dashboard is served on the gRPC
    /// addresses, which a browser can reach only over TLS (HTTP/2 negotiated by ALPN); cleartext gRPC endpoints speak
    /// HTTP/2 with prior knowledge, which browsers do not.
    /// </summary>
    public string Url { get; set; } = "";

    /// <summary>
    /// A bearer token the JSON API requires (<c>Authorization: Bearer …</c>; the page takes it from its address,
    /// <c>{Path}/#token=…</c>, which browsers never send to the server). Empty (the default): no token.
    /// </summary>
    public string AccessToken { get; set; } = "";

    /// <summary>Seconds between the page's polls of the JSON (default 2).</summary>
    public double RefreshSeconds { get; set; } = 2;

    /// <summary>True when <see cref="Url"/> names a loopback host (127.0.0.0/8, ::1 or localhost).</summary>
    public bool UrlIsLoopback =>
        Uri.TryCreate(Url, UriKind.Absolute, out var url)
        && (string.Equals(url.Host, "localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(url.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip)));

    /// <summary>What is wrong with these settings, one sentence per problem naming the key; empty when valid.</summary>
    /// <param name="plaintext">The coordinator's <c>Coordinator:Security:Plaintext</c> policy.</param>
    /// <param name="prometheusPath">The Prometheus path, which the dashboard must not shadow.</param>
    public IReadOnlyList<string> Validate(PlaintextPolicy plaintext, string prometheusPath)
    {
        const string S = "Coordinator:Dashboard:";
        var errors = new List<string>();
        if (!Enabled)
        {
            return errors;
        }

        if (Path is null || !Path.StartsWith('/') || Path.Length < 2 || Path.EndsWith('/') || Path.IndexOfAny(['?', '#', ' ', '{', '}', '*']) >= 0)
        {
            errors.Add($"{S}Path must start with '/', name a folder (not '/' alone), not end with '/' and hold no '?', '#', spaces, braces or '*', not '{Path}'.");
        }
        else if (string.Equals(prometheusPath?.TrimEnd('/'), Path, StringComparison.OrdinalIgnoreCase)
            || (prometheusPath ?? "").StartsWith(Path + "/", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{S}Path '{Path}' overlaps Coordinator:Prometheus:Path '{prometheusPath}'.");
        }

        if (!(RefreshSeconds is >= 0.2 and <= 3600))
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{S}RefreshSeconds must be between 0.2 and 3600, not {RefreshSeconds}."));
        }

        if (AccessToken is { Length: > 0 and < 16 })
        {
            errors.Add($"{S}AccessToken must be at least 16 characters (e.g. 'openssl rand -hex 24'), or empty for none.");
        }

        if (string.IsNullOrEmpty(Url))
        {
            return errors;
        }

        if (!Uri.TryCreate(Url, UriKind.Absolute, out var url) || url.Scheme != "http" || url.Port <= 0 || url.AbsolutePath != "/")
        {
            errors.Add($"{S}Url must be an http address with a port and no path, e.g. http://127.0.0.1:8080, not '{Url}'.");
        }
        else if (!UrlIsLoopback && string.IsNullOrEmpty(AccessToken) && plaintext != PlaintextPolicy.Allow)
        {
            errors.Add($"{S}Url '{Url}' serves the dashboard in cleartext beyond this machine without a token: bind it to 127.0.0.1 " +
                $"(and reach it through an SSH tunnel or a TLS reverse proxy), set {S}AccessToken, or, on a trusted network only, set Coordinator:Security:Plaintext to allow.");
        }

        return errors;
    }
}
