using System.Globalization;

namespace Federated.Learning.Strategies;

/// <summary>Builds a round's client halves from what the strategy sent.</summary>
public static class ClientAlgorithms
{
    /// <summary>
    /// The client algorithms <paramref name="round"/> asks for, in the order they run: a <see cref="ProximalTerm"/>
    /// when <c>proximal_mu</c> &gt; 0, then a <see cref="ScaffoldCorrection"/> when <c>scaffold</c> is <c>true</c> or the
    /// server sent <c>scaffold.c</c>. FedAvg, FedAvgM, the adaptive strategies and FedNova need none.
    /// </summary>
    public static IReadOnlyList<IClientAlgorithm> Create(ClientRound round)
    {
        ArgumentNullException.ThrowIfNull(round);
        var algorithms = new List<IClientAlgorithm>();
        if (round.Config.TryGetValue(FedProx.MuKey, out var text))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var mu) || !(mu >= 0) || !double.IsFinite(mu))
            {
                throw new ArgumentException($"Configuration '{FedProx.MuKey}' must be a non-negative number, not '{text}'.", nameof(round));
            }

            if (mu > 0)
            {
                algorithms.Add(new ProximalTerm(round, mu));
            }
        }

        var scaffold = round.Config.TryGetValue(Scaffold.ConfigKey, out var flag) && string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase);
        if (scaffold || round.ServerTensors.ContainsKey(Scaffold.ServerControlKey))
        {
            algorithms.Add(new ScaffoldCorrection(round));
        }

        return algorithms;
    }
}
