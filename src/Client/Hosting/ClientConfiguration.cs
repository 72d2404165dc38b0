using System.Collections;
using Microsoft.Extensions.Configuration;

namespace Federated.Client.Hosting;

/// <summary>Adds the agent's own configuration sources on top of the host's defaults.</summary>
public static class ClientConfiguration
{
    /// <summary>Environment variables with this prefix map into the <c>Client</c> section (<c>FEDERATED_CLIENT__Data__Index</c> → <c>Client:Data:Index</c>).</summary>
    public const string EnvironmentPrefix = "FEDERATED_CLIENT__";

    /// <summary>
    /// Adds <see cref="EnvironmentPrefix"/> variables, then the command line again so that it keeps the highest precedence
    /// (appsettings → environment → command line).
    /// </summary>
    public static void AddClientSources(IConfigurationBuilder configuration, string[] args, IDictionary? environment = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(args);
        environment ??= Environment.GetEnvironmentVariables();
        var mapped = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in environment)
        {
            if (entry.Key is string key && key.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase) && key.Length > EnvironmentPrefix.Length)
            {
                mapped[ClientOptions.Section + ":" + key[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal)] = entry.Value as string;
            }
        }

        if (mapped.Count > 0)
        {
            configuration.AddInMemoryCollection(mapped);
        }

        configuration.AddCommandLine(args);
    }
}
