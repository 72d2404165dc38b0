namespace Federated.Learning.SecureAggregation;

/// <summary>A secure-aggregation round cannot go on (a protocol rule was broken or too few agents are left); the next round starts afresh.</summary>
public class SecureAggregationException : Exception
{
    /// <summary>An exception with a default message.</summary>
    public SecureAggregationException()
        : base("The secure-aggregation round failed.")
    {
    }

    /// <summary>An exception with <paramref name="message"/>.</summary>
    public SecureAggregationException(string message)
        : base(message)
    {
    }

    /// <summary>An exception with <paramref name="message"/> caused by <paramref name="innerException"/>.</summary>
    public SecureAggregationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Unmasking needs an agent's secret (a survivor's self-mask seed or a dropped agent's masking key) but fewer than
/// the threshold of its neighbours returned a share of it: too many dropouts in its neighbourhood.
/// </summary>
public sealed class InsufficientSharesException : SecureAggregationException
{
    /// <summary>An exception with a default message.</summary>
    public InsufficientSharesException()
    {
    }

    /// <summary>An exception with <paramref name="message"/>.</summary>
    public InsufficientSharesException(string message)
        : base(message)
    {
    }

    /// <summary>An exception with <paramref name="message"/> caused by <paramref name="innerException"/>.</summary>
    public InsufficientSharesException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The agent <paramref name="agentId"/> has <paramref name="available"/> shares of its <paramref name="secret"/>, fewer than <paramref name="threshold"/>.</summary>
    public InsufficientSharesException(int agentId, string secret, int available, int threshold)
        : base($"Agent {agentId}'s {secret} cannot be reconstructed: {available} live neighbours returned shares, the threshold is {threshold}.")
    {
        AgentId = agentId;
        Available = available;
        Threshold = threshold;
    }

    /// <summary>The agent whose secret cannot be reconstructed.</summary>
    public int AgentId { get; }

    /// <summary>The shares that came back.</summary>
    public int Available { get; }

    /// <summary>The shares needed.</summary>
    public int Threshold { get; }
}
