using System.Globalization;
using Federated.Learning.Personalization;

namespace Federated.Learning.Strategies;

/// <summary>Builds a round's client halves from what the strategy sent.</summary>
public static class ClientAlgorithms
{
    /// <summary>
    /// The client algorithms <paramref name="round"/> asks for, in the order they run: a <see cref="ProximalTerm"/>
    /// when <c>proximal_mu</c> &gt; 0, then a <see cref="ScaffoldCorrection"/> when <c>scaffold</c> is <c>true</c> or the
    /// server sent <c>scaffold.c</c>, then the personalisation half: a <see cref="PersonalHead"/> when the round names a
    /// FedPer head (<c>fedper_head</c> or <c>fedper_head_layers</c>), a <see cref="DittoPersonalModel"/> when it names
    /// Ditto's <c>ditto_lambda</c> (at most one of the two). FedAvg, FedAvgM, the adaptive strategies and FedNova need none.
    /// </summary>
    /// <exception cref="ArgumentException">An invalid value, or FedPer and Ditto together.</exception>
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

        var head = FedPer.FromConfig(round.Config);
        var ditto = Ditto.FromConfig(round.Config);
        if (head is not null && ditto is not null)
        {
            throw new ArgumentException($"A round cannot personalise with both FedPer ('{FedPer.HeadKey}' or '{FedPer.HeadLayersKey}') and Ditto ('{Ditto.LambdaKey}').", nameof(round));
        }

        if (head is not null)
        {
            algorithms.Add(new PersonalHead(round, head));
        }
        else if (ditto is { } d)
        {
            algorithms.Add(new DittoPersonalModel(round, d.Lambda, d.Epochs));
        }

        return algorithms;
    }
}
