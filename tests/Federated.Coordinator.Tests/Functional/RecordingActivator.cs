using System.Collections.Concurrent;
using Federated.Coordinator.Agents;

namespace Federated.Coordinator.Tests.Functional;

/// <summary>An activator that records which offline agents each round asked for, and which it released.</summary>
internal sealed class RecordingActivator : IAgentActivator
{
    public ConcurrentQueue<(int Round, string AgentId)> Activated { get; } = new();

    public ConcurrentQueue<string> Released { get; } = new();

    public void Activate(int round, IReadOnlyList<string> agentIds)
    {
        foreach (var id in agentIds)
        {
            Activated.Enqueue((round, id));
        }
    }

    public void Release(string agentId) => Released.Enqueue(agentId);

    /// <summary>What <see cref="IAgentActivator.RetiresReleasedAgents"/> says (this activator retires nobody itself).</summary>
    public bool Retires { get; init; }

    bool IAgentActivator.RetiresReleasedAgents => Retires;
}
