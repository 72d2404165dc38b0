using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Security;

/// <summary>
/// Re-reads the agent registry file every <see cref="SecuritySettings.ReloadSeconds"/> and revokes, in the running
/// coordinator, every known agent the file now marks revoked: its token stops working and its session closes with
/// PermissionDenied. (Enrolments and session opens also read the file, so a revoked agent never gets back in.)
/// </summary>
internal sealed class RevocationWatcher(IOptions<CoordinatorOptions> options, AgentKeyStore store, AgentRegistry registry, TimeProvider time, ILogger<RevocationWatcher> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value.Security;
        var tls = settings.Tls.CertificatePath.Length == 0 ? "off" : settings.Tls.ClientCaPath.Length == 0 ? "on" : "mutual";
        SecurityLog.Configured(logger, settings.IsOpen ? "open" : "by registered key or token", settings.PlaintextPolicy, tls, store.Path);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(settings.ReloadSeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                Sweep(force: false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Revokes the known agents the registry marks revoked (only after the file changed, unless <paramref name="force"/>).</summary>
    public void Sweep(bool force)
    {
        try
        {
            if (!store.ReloadIfChanged() && !force)
            {
                return;
            }

            foreach (var id in registry.KnownIds())
            {
                if (registry.Find(id) is { Revoked: false } agent && store.IsRevoked(id, agent.PublicKey ?? []) && registry.Revoke(id))
                {
                    SecurityLog.AgentRevoked(logger, id);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            SecurityLog.RegistryUnreadable(logger, store.Path, e.Message);
        }
    }
}
