using Federated.Learning.Strategies;

namespace Federated.Client.Agent;

/// <summary>Builds the client half of the round's strategy (FedProx's proximal term, SCAFFOLD's correction, ...).</summary>
internal static class ClientAlgorithmsAdapter
{
    /// <summary>The plug-ins for <paramref name="round"/> (empty for plain FedAvg).</summary>
    public static IReadOnlyList<IClientAlgorithm> Create(ClientRound round)
    {
        ArgumentNullException.ThrowIfNull(round);
        return ClientAlgorithms.Create(round);
    }
}
