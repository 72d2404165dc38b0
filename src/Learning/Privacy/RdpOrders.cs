namespace Federated.Learning.Privacy;

/// <summary>Grids of Rényi orders α &gt; 1 at which the accountant evaluates RDP; ε is minimised over the grid.</summary>
public static class RdpOrders
{
    /// <summary>Opacus' <c>RDPAccountant.DEFAULT_ALPHAS</c>: 1 + x/10 for x = 1..99 (1.1 to 10.9), then 12 to 63.</summary>
    public static IReadOnlyList<double> Opacus { get; } = BuildOpacus();

    /// <summary>
    /// TF-Privacy's grid (<c>compute_dp_sgd_privacy_lib</c>): 1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, then 5 to
    /// 63, then 128, 256, 512.
    /// </summary>
    public static IReadOnlyList<double> TensorFlowPrivacy { get; } =
        [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, .. Enumerable.Range(5, 59).Select(a => (double)a), 128, 256, 512];

    /// <summary>
    /// The union of the two grids, sorted: never a looser ε than either alone (a minimum over more orders), and
    /// reaching α = 512 for the small-ε, large-noise regime. The default of <see cref="PrivacyLedger"/>.
    /// </summary>
    public static IReadOnlyList<double> Default { get; } = [.. Opacus.Concat(TensorFlowPrivacy).Distinct().Order()];

    private static double[] BuildOpacus()
    {
        // Computed exactly as Python's `1 + x / 10.0`, so the fractional orders are the same doubles as Opacus'.
        var orders = new List<double>();
        for (var x = 1; x < 100; x++)
        {
            orders.Add(1 + (x / 10.0));
        }

        for (var a = 12; a < 64; a++)
        {
            orders.Add(a);
        }

        return [.. orders];
    }
}
