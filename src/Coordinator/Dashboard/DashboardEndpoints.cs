using System.Security.Cryptography;
using System.Text;
using Federated.Coordinator.Hosting;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Dashboard;

/// <summary>
/// Maps the read-only dashboard: the page and its script and style (embedded in the assembly: nothing is fetched from
/// elsewhere) at <c>{Path}/</c>, and the JSON it polls at <c>{Path}/api/state</c>. Only GET is mapped; with
/// <c>Coordinator:Dashboard:AccessToken</c> the JSON needs <c>Authorization: Bearer {token}</c>.
/// </summary>
internal static class DashboardEndpoints
{
    // The page runs its own script and style only and talks to its own origin only.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly (string Name, string Resource, string ContentType)[] Assets =
    [
        ("", "index.html", "text/html; charset=utf-8"),
        ("dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
        ("favicon.svg", "favicon.svg", "image/svg+xml"),
    ];

    /// <summary>Maps the dashboard when <c>Coordinator:Dashboard:Enabled</c> is true.</summary>
    public static IEndpointRouteBuilder MapFederatedDashboard(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<CoordinatorOptions>>().Value.Dashboard;
        if (!options.Enabled)
        {
            return endpoints;
        }

        var logger = endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(DashboardEndpoints).FullName!);
        var expected = options.AccessToken.Length > 0 ? SHA256.HashData(Encoding.UTF8.GetBytes(options.AccessToken)) : null;
        var group = endpoints.MapGroup(options.Path);
        if (options.Url.Length > 0)
        {
            // Only on the browsers' own HTTP/1.1 address.
            group.RequireHost($"*:{new Uri(options.Url).Port}");
        }

        foreach (var (name, resource, contentType) in Assets)
        {
            var bytes = Load(resource);
            group.MapGet("/" + name, (HttpContext http) =>
            {
                Secure(http.Response);

                // The page's relative links need its folder address: {Path} (one route with {Path}/) goes to {Path}/.
                return name.Length == 0 && !(http.Request.Path.Value ?? "").EndsWith('/')
                    ? Results.Redirect(http.Request.PathBase + options.Path + "/")
                    : Results.Bytes(bytes, contentType);
            });
        }

        group.MapGet("/api/state", (HttpContext http, DashboardStateBuilder state) =>
        {
            Secure(http.Response);
            http.Response.Headers.CacheControl = "no-store";
            if (expected is not null && !Authorized(http.Request, expected))
            {
                DashboardLog.Refused(logger, http.Request.Path, http.Connection.RemoteIpAddress?.ToString() ?? "?", "no valid bearer token");
                http.Response.Headers.WWWAuthenticate = "Bearer";
                return Results.Unauthorized();
            }

            return Results.Json(state.Build(), DashboardJsonContext.Default.DashboardState);
        });

        DashboardLog.Serving(logger, options.Path, options.Url.Length > 0 ? options.Url + " (HTTP/1.1)" : "the gRPC addresses", expected is null ? "none" : "required", options.RefreshSeconds);
        return endpoints;
    }

    private static bool Authorized(HttpRequest request, byte[] expected)
    {
        var header = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        // Hashes of equal length, compared in constant time: the comparison reveals neither the token nor its length.
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }

    private static void Secure(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.XFrameOptions = "DENY";
        response.Headers["Referrer-Policy"] = "no-referrer";
    }

    private static byte[] Load(string name)
    {
        using var stream = typeof(DashboardEndpoints).Assembly.GetManifestResourceStream("Federated.Coordinator.Dashboard." + name)
            ?? throw new InvalidOperationException($"The dashboard's embedded resource '{name}' is missing from the build.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
