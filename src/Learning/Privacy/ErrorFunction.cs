namespace Federated.Learning.Privacy;

/// <summary>
/// The complementary error function in double precision, which .NET does not provide: W. J. Cody's rational
/// Chebyshev approximations ("Rational Chebyshev approximations for the error function", Math. Comp. 23, 1969,
/// pp. 631–638; the CALERF packet), good to a few units in the last place. <see cref="LogErfc"/> stays finite
/// where erfc underflows (x &gt; 26.5), through the scaled function erfcx(x) = exp(x²) erfc(x).
/// </summary>
internal static class ErrorFunction
{
    // erf(x) = x P(x²)/Q(x²) for |x| ≤ 0.46875.
    private static readonly double[] SmallP = [3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1];
    private static readonly double[] SmallQ = [2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03];

    // erfcx(x) = P(x)/Q(x) for 0.46875 < x ≤ 4.
    private static readonly double[] MiddleP =
    [
        5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
        8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
        2.15311535474403846e-8,
    ];

    private static readonly double[] MiddleQ =
    [
        1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
        3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03,
    ];

    // erfcx(x) = (1/√π − x⁻² P(x⁻²)/Q(x⁻²)) / x for x > 4.
    private static readonly double[] LargeP = [3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2];
    private static readonly double[] LargeQ = [2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3];

    private const double SmallLimit = 0.46875;
    private const double InverseSqrtPi = 5.6418958354775628695e-1;

    // Above this, 1 − 1/(2x²) rounds to 1 and erfcx(x) = 1/(x√π) to double precision.
    private const double Huge = 6.71e7;

    /// <summary>erfc(x) = 1 − erf(x); 0 once it underflows (x &gt; 26.55), 2 for x below −6.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        var y = Math.Abs(x);
        if (y <= SmallLimit)
        {
            return 1 - SmallErf(x);
        }

        var positive = y > 26.6 ? 0 : ScaledTail(y) * ExpMinusSquare(y);
        return x < 0 ? 2 - positive : positive;
    }

    /// <summary>log erfc(x), accurate where erfc(x) underflows (large x) and where it is close to 2 (very negative x).</summary>
    public static double LogErfc(double x)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x <= SmallLimit)
        {
            // erfc(x) ∈ [0.507, 2]: no cancellation; log1p keeps tiny |x| exact (erfc(x) ≈ 1 − 2x/√π).
            return x >= -SmallLimit ? LogSpace.Log1P(-SmallErf(x)) : Math.Log(2 - ScaledTail(-x) * ExpMinusSquare(-x));
        }

        if (double.IsPositiveInfinity(x))
        {
            return double.NegativeInfinity;
        }

        return Math.Log(ScaledTail(x)) - x * x;
    }

    /// <summary>erf(x) for |x| ≤ 0.46875.</summary>
    private static double SmallErf(double x)
    {
        var z = x * x;
        var numerator = SmallP[4] * z;
        var denominator = z;
        for (var i = 0; i < 3; i++)
        {
            numerator = (numerator + SmallP[i]) * z;
            denominator = (denominator + SmallQ[i]) * z;
        }

        return x * (numerator + SmallP[3]) / (denominator + SmallQ[3]);
    }

    /// <summary>erfcx(y) = exp(y²) erfc(y) for y &gt; 0.46875.</summary>
    private static double ScaledTail(double y)
    {
        if (y <= 4)
        {
            var numerator = MiddleP[8] * y;
            var denominator = y;
            for (var i = 0; i < 7; i++)
            {
                numerator = (numerator + MiddleP[i]) * y;
                denominator = (denominator + MiddleQ[i]) * y;
            }

            return (numerator + MiddleP[7]) / (denominator + MiddleQ[7]);
        }

        if (y >= Huge)
        {
            return InverseSqrtPi / y;
        }

        var w = 1 / (y * y);
        var num = LargeP[5] * w;
        var den = w;
        for (var i = 0; i < 4; i++)
        {
            num = (num + LargeP[i]) * w;
            den = (den + LargeQ[i]) * w;
        }

        var correction = w * (num + LargeP[4]) / (den + LargeQ[4]);
        return (InverseSqrtPi - correction) / y;
    }

    /// <summary>exp(−y²) without the rounding error of y²: y = h + d with h a multiple of 1/16, so h² is exact.</summary>
    private static double ExpMinusSquare(double y)
    {
        var h = Math.Truncate(y * 16) / 16;
        var d = (y - h) * (y + h);
        return Math.Exp(-h * h) * Math.Exp(-d);
    }
}
