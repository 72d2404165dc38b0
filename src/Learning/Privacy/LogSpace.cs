namespace Federated.Learning.Privacy;

/// <summary>
/// Arithmetic on numbers held as their natural logarithms (−∞ is 0), as the RDP series need, and the
/// cancellation-free log(1 + x) and exp(x) − 1 (.NET's <c>double.LogP1</c> and <c>double.ExpM1</c> compute
/// log(x + 1) and exp(x) − 1 directly, which loses every digit for tiny x).
/// </summary>
internal static class LogSpace
{
    /// <summary>log(exp(a) + exp(b)).</summary>
    public static double Add(double logA, double logB)
    {
        var (low, high) = logA < logB ? (logA, logB) : (logB, logA);
        return double.IsNegativeInfinity(low) ? high : Log1P(Math.Exp(low - high)) + high;
    }

    /// <summary>log(exp(a) − exp(b)) for a ≥ b; throws when the difference would be negative.</summary>
    public static double Subtract(double logA, double logB)
    {
        if (logA < logB)
        {
            throw new InvalidOperationException($"Log-space subtraction would be negative (log a = {logA}, log b = {logB}).");
        }

        if (double.IsNegativeInfinity(logB))
        {
            return logA;
        }

        if (logA == logB)
        {
            return double.NegativeInfinity;
        }

        // exp(a) − exp(b) = (exp(a − b) − 1) exp(b); once exp(a − b) overflows, the result is a.
        var expM1 = ExpM1(logA - logB);
        return double.IsPositiveInfinity(expM1) ? logA : Math.Log(expM1) + logB;
    }

    /// <summary>log(1 + x), accurate for tiny |x| (Kahan's correction: the rounding of 1 + x is divided out).</summary>
    public static double Log1P(double x)
    {
        var u = 1 + x;
        return u == 1 ? x : double.IsPositiveInfinity(u) ? Math.Log(x) : Math.Log(u) * x / (u - 1);
    }

    /// <summary>exp(x) − 1, accurate for tiny |x| (Kahan's correction).</summary>
    public static double ExpM1(double x)
    {
        var u = Math.Exp(x);
        if (u == 1)
        {
            return x;
        }

        var um1 = u - 1;
        return um1 == -1 || double.IsPositiveInfinity(u) ? um1 : um1 * x / Math.Log(u);
    }
}
