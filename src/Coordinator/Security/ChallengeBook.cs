using System.Collections.Concurrent;
using System.Security.Cryptography;
using Federated.Coordinator.Hosting;
using Federated.Protocol.Identity;
using Federated.Protocol.V1;
using Google.Protobuf;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Security;

/// <summary>
/// The challenges this coordinator issued and not yet saw answered. A nonce is taken out the first time it is
/// presented, whatever the outcome, so a replayed signature finds nothing; an expired one is refused.
/// </summary>
internal sealed class ChallengeBook(IOptions<CoordinatorOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly SecuritySettings _settings = options.Value.Security;

    /// <summary>This coordinator instance's id (part of every signed challenge).</summary>
    public string CoordinatorId { get; } = $"coordinator-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";

    /// <summary>Challenges outstanding.</summary>
    public int Count => _pending.Count;

    /// <summary>A fresh challenge for <paramref name="purpose"/>; with <paramref name="agentId"/>, only that agent may answer it.</summary>
    /// <returns>Null when <see cref="SecuritySettings.MaxPendingChallenges"/> are outstanding even after expired ones were dropped.</returns>
    public Challenge? Issue(string purpose, string? agentId)
    {
        var now = time.GetUtcNow();
        if (_pending.Count >= _settings.MaxPendingChallenges)
        {
            foreach (var (key, pending) in _pending)
            {
                if (pending.Expires <= now)
                {
                    _pending.TryRemove(key, out _);
                }
            }

            if (_pending.Count >= _settings.MaxPendingChallenges)
            {
                return null;
            }
        }

        var nonce = RandomNumberGenerator.GetBytes(ChallengeSigning.NonceSize);
        var expires = now + TimeSpan.FromSeconds(_settings.ChallengeSeconds);
        var challenge = new Challenge
        {
            Nonce = ByteString.CopyFrom(nonce),
            CoordinatorId = CoordinatorId,
            ExpiresUnixMs = expires.ToUnixTimeMilliseconds(),
            Purpose = purpose,
        };
        _pending[Convert.ToHexString(nonce)] = new Pending(challenge, expires, agentId);
        return challenge;
    }

    /// <summary>
    /// Takes the challenge with <paramref name="nonce"/> out of the book and checks it was issued for
    /// <paramref name="purpose"/> (and <paramref name="agentId"/>, when it was bound to one) and has not expired.
    /// </summary>
    /// <returns>The challenge, or null with the reason it is refused.</returns>
    public (Challenge? Challenge, string? Refusal) Take(ReadOnlySpan<byte> nonce, string purpose, string agentId)
    {
        if (nonce.Length != ChallengeSigning.NonceSize || !_pending.TryRemove(Convert.ToHexString(nonce), out var pending))
        {
            return (null, "The challenge is unknown or was already used: ask for a new one.");
        }

        if (pending.Challenge.Purpose != purpose || (pending.AgentId is not null && pending.AgentId != agentId))
        {
            return (null, "The challenge was issued for another purpose or agent.");
        }

        if (pending.Expires <= time.GetUtcNow())
        {
            return (null, "The challenge expired: ask for a new one.");
        }

        return (pending.Challenge, null);
    }

    private sealed record Pending(Challenge Challenge, DateTimeOffset Expires, string? AgentId);
}

/// <summary>
/// A token bucket on enrolments (<see cref="SecuritySettings.EnrolmentsPerMinute"/>, <see cref="SecuritySettings.EnrolmentBurst"/>),
/// timed by the injected <see cref="TimeProvider"/>.
/// </summary>
internal sealed class EnrolmentRateLimiter(IOptions<CoordinatorOptions> options, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly double _perSecond = options.Value.Security.EnrolmentsPerMinute / 60.0;
    private readonly double _capacity = options.Value.Security.EnrolmentBurst > 0 ? options.Value.Security.EnrolmentBurst : Math.Max(1, options.Value.Security.EnrolmentsPerMinute);
    private double _tokens = options.Value.Security.EnrolmentBurst > 0 ? options.Value.Security.EnrolmentBurst : Math.Max(1, options.Value.Security.EnrolmentsPerMinute);
    private long _last = time.GetTimestamp();

    /// <summary>Takes one enrolment from the bucket.</summary>
    /// <returns>Zero when allowed; otherwise how long until one is.</returns>
    public TimeSpan TryAcquire()
    {
        if (_perSecond <= 0)
        {
            return TimeSpan.Zero;
        }

        lock (_gate)
        {
            var now = time.GetTimestamp();
            _tokens = Math.Min(_capacity, _tokens + (time.GetElapsedTime(_last, now).TotalSeconds * _perSecond));
            _last = now;
            if (_tokens >= 1)
            {
                _tokens -= 1;
                return TimeSpan.Zero;
            }

            return TimeSpan.FromSeconds((1 - _tokens) / _perSecond);
        }
    }
}
