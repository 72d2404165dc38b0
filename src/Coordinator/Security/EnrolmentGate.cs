using System.Security.Cryptography;
using Federated.Coordinator.Agents;
using Federated.Coordinator.Hosting;
using Federated.Learning.SecureAggregation;
using Federated.Protocol.Identity;
using Federated.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Security;

/// <summary>Who an enrolment or a session turned out to be, or why it is refused.</summary>
/// <param name="AgentId">The agent id to enrol under (empty: let the registry choose one, keyless open enrolment only).</param>
/// <param name="PublicKey">The verified public key; null for a keyless agent.</param>
/// <param name="Code">OK, or the status of the refusal.</param>
/// <param name="Refusal">Why it was refused.</param>
/// <param name="Via">How the key was admitted: registered, token, or open.</param>
internal sealed record Admission(string AgentId, byte[]? PublicKey, StatusCode Code, string? Refusal, string Via)
{
    /// <summary>True when admitted.</summary>
    public bool Ok => Code == StatusCode.OK;

    internal static Admission Refuse(StatusCode code, string reason) => new("", null, code, reason, "");
}

/// <summary>
/// Decides who may enrol and open a session: checks the signed challenge (purpose, coordinator, agent id, nonce, expiry
/// and key), the agent registry (<see cref="AgentKeyStore"/>: registered keys, revocations, enrolment tokens) and, in
/// open mode, that an id stays with the key that first used it. Unknown keys, bad or replayed signatures get
/// Unauthenticated; revoked agents PermissionDenied.
/// </summary>
internal sealed class EnrolmentGate(IOptions<CoordinatorOptions> options, AgentKeyStore store, ChallengeBook challenges, AgentRegistry registry)
{
    private readonly SecuritySettings _settings = options.Value.Security;

    /// <summary>Checks an enrolment.</summary>
    public Admission Admit(EnrollRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var requested = request.AgentId.Trim();
        var key = request.PublicKey.ToByteArray();
        if (key.Length == 0)
        {
            return AdmitKeyless(requested);
        }

        if (key.Length != 32)
        {
            return Admission.Refuse(StatusCode.InvalidArgument, "A public key is 32 raw Ed25519 bytes.");
        }

        var (challenge, refusal) = challenges.Take(request.ChallengeNonce.Span, ChallengeSigning.EnrolPurpose, requested);
        if (challenge is null)
        {
            return Admission.Refuse(StatusCode.Unauthenticated, refusal!);
        }

        var payload = ChallengeSigning.Payload(ChallengeSigning.EnrolPurpose, challenge.CoordinatorId, requested, challenge.Nonce.Span, challenge.ExpiresUnixMs, key);
        if (!AgentIdentity.Verify(key, payload, request.Signature.Span))
        {
            return Admission.Refuse(StatusCode.Unauthenticated, "The challenge signature does not verify under the presented public key.");
        }

        if (store.FindByKey(key) is { } registered)
        {
            return registered.RevokedAt is not null
                ? Admission.Refuse(StatusCode.PermissionDenied, $"Agent '{registered.Id}' was revoked.")
                : new Admission(registered.Id, key, StatusCode.OK, null, "registered");
        }

        if (requested.Length > 0 && store.FindById(requested) is { } byId)
        {
            return byId.RevokedAt is not null
                ? Admission.Refuse(StatusCode.PermissionDenied, $"Agent '{requested}' was revoked.")
                : Admission.Refuse(StatusCode.Unauthenticated, $"Agent id '{requested}' is registered with another key.");
        }

        if (request.EnrolmentToken.Length > 0)
        {
            var (agent, tokenRefusal) = store.EnrolWithToken(request.EnrolmentToken, requested, DerivedId(key), key);
            return agent is null
                ? Admission.Refuse(StatusCode.Unauthenticated, tokenRefusal!)
                : new Admission(agent.Id, key, StatusCode.OK, null, agent.Source ?? "token");
        }

        if (!_settings.IsOpen)
        {
            return Admission.Refuse(StatusCode.Unauthenticated,
                $"The public key {Convert.ToBase64String(key)} is not registered: an administrator registers it " +
                "('federated-coordinator agents register <agent-id> <public-key>') or issues a one-time enrolment token ('agents token').");
        }

        var id = requested.Length > 0 ? requested : DerivedId(key);
        return registry.Find(id)?.PublicKey is { } pinned && !CryptographicOperations.FixedTimeEquals(pinned, key)
            ? Admission.Refuse(StatusCode.Unauthenticated, $"Agent id '{id}' is held by another key.")
            : new Admission(id, key, StatusCode.OK, null, "open");
    }

    /// <summary>Checks the signed <c>Hello</c> that opens a session of <paramref name="agent"/>.</summary>
    public Admission CheckSession(AgentRecord agent, Hello hello)
    {
        ArgumentNullException.ThrowIfNull(agent);
        ArgumentNullException.ThrowIfNull(hello);
        var key = agent.PublicKey;
        if (store.IsRevoked(agent.Id, key ?? []))
        {
            return Admission.Refuse(StatusCode.PermissionDenied, $"Agent '{agent.Id}' was revoked.");
        }

        if (key is null)
        {
            return new Admission(agent.Id, null, StatusCode.OK, null, "keyless");
        }

        var (challenge, refusal) = challenges.Take(hello.ChallengeNonce.Span, ChallengeSigning.SessionPurpose, agent.Id);
        if (challenge is null)
        {
            return Admission.Refuse(StatusCode.Unauthenticated, refusal!);
        }

        var payload = ChallengeSigning.Payload(ChallengeSigning.SessionPurpose, challenge.CoordinatorId, agent.Id, challenge.Nonce.Span, challenge.ExpiresUnixMs, key);
        return AgentIdentity.Verify(key, payload, hello.Signature.Span)
            ? new Admission(agent.Id, key, StatusCode.OK, null, "session")
            : Admission.Refuse(StatusCode.Unauthenticated, "The session challenge signature does not verify under the agent's key.");
    }

    /// <summary>A stable agent id for a key that came without one.</summary>
    public static string DerivedId(ReadOnlySpan<byte> publicKey) => $"agent-{Convert.ToHexStringLower(SHA256.HashData(publicKey))[..12]}";

    private Admission AdmitKeyless(string requested)
    {
        if (!_settings.IsOpen)
        {
            return Admission.Refuse(StatusCode.Unauthenticated,
                "This coordinator enrols agents by key (Coordinator:Security:Mode keys): present a public key and a signed challenge.");
        }

        if (requested.Length > 0)
        {
            if (store.FindById(requested) is { } byId)
            {
                return byId.RevokedAt is not null
                    ? Admission.Refuse(StatusCode.PermissionDenied, $"Agent '{requested}' was revoked.")
                    : Admission.Refuse(StatusCode.Unauthenticated, $"Agent '{requested}' is registered with a key: enrol with it.");
            }

            if (registry.Find(requested)?.PublicKey is not null)
            {
                return Admission.Refuse(StatusCode.Unauthenticated, $"Agent id '{requested}' is held by a key: enrol with it.");
            }
        }

        return new Admission(requested, null, StatusCode.OK, null, "open");
    }
}
