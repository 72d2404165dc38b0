using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class ErrorFunctionTests
{
    // Reference values from mpmath at 40 digits (mp.erfc, mp.log(mp.erfc)) at the exact doubles (0.1 is
    // 0.1000000000000000055…), rounded to 20 significant digits.
    public static TheoryData<double, double, double> Reference => new()
    {
        { -3, 1.9999779095030014146, 0.69313613525044681032 },
        { -1, 1.8427007929497148693, 0.61123231767807049464 },
        { -0.3, 1.3286267594591274162, 0.28414589714140825002 },
        { 0, 1.0, 0.0 },
        { 1e-10, 0.99999999988716208329, -1.1283791671591745922e-10 },
        { 0.1, 0.8875370839817151016, -0.11930497373739560532 },
        { 0.46875, 0.50738652678206200841, -0.67848218561439609899 },
        { 0.5, 0.47950012218695346232, -0.73501112983708440303 },
        { 1, 0.15729920705028513066, -1.8496055099332482486 },
        { 2, 0.0046777349810472658379, -5.3649412646166375745 },
        { 3.9, 3.4792248597231767129e-8, -17.173871216435402812 },
        { 4, 1.5417257900280018852e-8, -17.987778312103006503 },
        { 4.1, 6.7000276540849184417e-9, -18.821154183082647822 },
        { 5, 1.5374597944280348502e-12, -27.200889545537434422 },
        { 10, 2.088487583762544757e-45, -102.87988902484488857 },
        { 26, 5.6631924088561428465e-296, -679.83119976319423026 },
    };

    [Theory]
    [MemberData(nameof(Reference))]
    public void Erfc_MatchesHighPrecisionReference(double x, double erfc, double logErfc)
    {
        RdpAccountantTests.AssertRelative(erfc, ErrorFunction.Erfc(x), 1e-15);
        if (logErfc == 0)
        {
            Assert.Equal(0, ErrorFunction.LogErfc(x));
        }
        else
        {
            RdpAccountantTests.AssertRelative(logErfc, ErrorFunction.LogErfc(x), 1e-15);
        }
    }

    [Theory]
    // Beyond x ≈ 26.5 erfc underflows; log erfc must not.
    [InlineData(27, -732.86888650789741098)]
    [InlineData(50, -2504.4845878484513719)]
    [InlineData(100, -10005.177585122664333)]
    [InlineData(1000, -1000007.4801207219062)]
    public void LogErfc_WhereErfcUnderflows_StaysAccurate(double x, double expected)
    {
        RdpAccountantTests.AssertRelative(expected, ErrorFunction.LogErfc(x), 1e-15);
        Assert.Equal(double.NegativeInfinity, ErrorFunction.LogErfc(double.PositiveInfinity));
    }

    [Fact]
    public void Erfc_Limits()
    {
        Assert.Equal(0, ErrorFunction.Erfc(40));
        Assert.Equal(2, ErrorFunction.Erfc(-40));
        Assert.True(double.IsNaN(ErrorFunction.Erfc(double.NaN)));
    }
}
