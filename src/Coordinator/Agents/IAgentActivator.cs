namespace Federated.Coordinator.Agents;

/// <summary>
/// Brings offline agents online when a round samples them (<c>Coordinator:Population=enrolled</c>). Real devices
/// check in on their own schedule, so the default does nothing; the simulator's virtual-client pool materialises
/// the sampled agents from disk and retires them when the coordinator releases them.
/// </summary>
public interface IAgentActivator
{
    /// <summary>Round <paramref name="round"/> queued tasks for <paramref name="agentIds"/>, which have no open session.</summary>
    void Activate(int round, IReadOnlyList<string> agentIds);

    /// <summary>The coordinator needs nothing more from <paramref name="agentId"/> this round (result in, failed, or the round closed).</summary>
    void Release(string agentId);

    /// <summary>
    /// True when <see cref="Release"/> ends the agent's session (the simulator's pool retires it): an agent released and
    /// still on that session is about to leave, so a round that samples it again holds its task for its next session and
    /// activates it, rather than sending the task to the session that is closing. False (the default): released agents
    /// stay.
    /// </summary>
    bool RetiresReleasedAgents => false;
}

/// <summary>The production activator: agents come when they come.</summary>
internal sealed class PassiveAgentActivator : IAgentActivator
{
    public void Activate(int round, IReadOnlyList<string> agentIds)
    {
    }

    public void Release(string agentId)
    {
    }
}
