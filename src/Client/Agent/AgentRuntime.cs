using Federated.Client.Attacks;
using Federated.Learning.Runtime;
using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Protocol.V1;

namespace Federated.Client.Agent;

/// <summary>What outlives a session: identity, persisted state, local data and model, capabilities.</summary>
internal sealed class AgentRuntime(ClientOptions options, string agentId, AgentState state, AgentStateStore store, LocalTrainingService training, Capabilities capabilities, TorchThread torch, AttackStage attack, IColludingChannel colluding, Learning.SecureAggregation.AgentIdentity identity, AgentStatusReporter status, IEnumerable<PendingUpload> pending)
{
    /// <summary>The agent's Ed25519 identity key (signs enrolment and session challenges).</summary>
    public Learning.SecureAggregation.AgentIdentity Identity { get; } = identity;

    /// <summary>The live status behind <c>status.json</c>.</summary>
    public AgentStatusReporter Status { get; } = status;

    /// <summary>Sealed updates not yet delivered, oldest first (each also on disk under <c>pending/</c>).</summary>
    public List<PendingUpload> Pending { get; } = [.. pending];

    /// <summary>The malicious stage (<see cref="AttackStage.Honest"/> unless <c>Client:Attack</c> is set).</summary>
    public AttackStage Attack { get; } = attack;

    /// <summary>The omniscient attackers' channel (<see cref="NoColludingChannel"/> outside the in-process simulator).</summary>
    public IColludingChannel Colluding { get; } = colluding;

    /// <summary>The one thread that runs this agent's tensor work (warm libtorch state between rounds).</summary>
    public TorchThread Torch { get; } = torch;

    public ClientOptions Options { get; } = options;

    public string AgentId { get; set; } = agentId;

    public AgentState State { get; set; } = state;

    public AgentStateStore Store { get; } = store;

    public LocalTrainingService Training { get; } = training;

    /// <summary>The application's client middleware, in registration order.</summary>
    public IReadOnlyList<Middleware.IUpdateMiddleware> Middleware { get; init; } = [];

    public Capabilities Capabilities { get; } = capabilities;
}
