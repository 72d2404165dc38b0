using Federated.Learning.Privacy;

namespace Federated.Learning.Tests.Privacy;

public sealed class PrivacyLedgerTests
{
    [Fact]
    public void Record_MergesConsecutiveEqualSteps()
    {
        var ledger = new PrivacyLedger();

        ledger.Record(0.1, 1.1);
        ledger.Record(0.1, 1.1);
        ledger.Record(0.2, 1.1, 3);
        ledger.Record(0.1, 1.1);

        Assert.Equal(
            [new PrivacyLedgerEntry(0.1, 1.1, 2), new PrivacyLedgerEntry(0.2, 1.1, 3), new PrivacyLedgerEntry(0.1, 1.1, 1)],
            ledger.Entries);
        Assert.Equal(6, ledger.Steps);
    }

    [Fact]
    public void Spent_Homogeneous_EqualsTheAccountant()
    {
        var ledger = new PrivacyLedger([new PrivacyLedgerEntry(0.04, 1.5, 2250)], RdpOrders.Opacus);

        var spent = ledger.Spent(1e-5);

        Assert.Equal(RdpAccountant.Epsilon(0.04, 1.5, 2250, 1e-5, RdpOrders.Opacus), spent);
    }

    [Fact]
    public void Spent_Heterogeneous_AddsTheRdpCurves()
    {
        var ledger = new PrivacyLedger([new PrivacyLedgerEntry(0.01, 1.0, 100), new PrivacyLedgerEntry(0.05, 2.0, 40)]);
        var first = RdpAccountant.Rdp(0.01, 1.0, 100, RdpOrders.Default);
        var second = RdpAccountant.Rdp(0.05, 2.0, 40, RdpOrders.Default);
        var sum = first.Zip(second, (a, b) => a + b).ToArray();

        var spent = ledger.Spent(1e-5);

        Assert.Equal(RdpAccountant.Epsilon(RdpOrders.Default, sum, 1e-5), spent);
        Assert.True(spent.Epsilon > RdpAccountant.Epsilon(RdpOrders.Default, first, 1e-5).Epsilon);
        Assert.True(spent.Epsilon > RdpAccountant.Epsilon(RdpOrders.Default, second, 1e-5).Epsilon);
    }

    [Fact]
    public void Json_RoundTripsEntriesAndEpsilonExactly()
    {
        var ledger = new PrivacyLedger();
        ledger.Record(0.1, 1.0 / 3, 17);
        ledger.Record(0.123456789012345678, 0.9876543210987654, 5);

        var restored = PrivacyLedger.FromJson(ledger.ToJson());

        Assert.Equal(ledger.Entries, restored.Entries);
        Assert.Equal(ledger.Spent(1e-6), restored.Spent(1e-6));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("null")]
    [InlineData("[{\"q\":1.5,\"z\":1,\"steps\":1}]")]
    [InlineData("[{\"q\":0.1,\"z\":1,\"steps\":-1}]")]
    public void FromJson_Garbage_IsAFormatException(string json)
    {
        Assert.Throws<FormatException>(() => PrivacyLedger.FromJson(json));
    }

    [Fact]
    public void WouldExceed_FiresWhenTheNextStepCrossesTheBudget()
    {
        // Find the first round at which ε(δ = 1e-5) of (q = 0.1, z = 1) passes 4, and check the check fires there.
        var ledger = new PrivacyLedger();
        var rounds = 0;
        while (!ledger.WouldExceed(4, 1e-5, 0.1, 1.0))
        {
            ledger.Record(0.1, 1.0);
            rounds++;
            Assert.True(rounds < 10_000, "the budget check never fired");
        }

        Assert.True(ledger.Spent(1e-5).Epsilon <= 4);
        Assert.True(ledger.SpentAfter(1e-5, 0.1, 1.0).Epsilon > 4);
        Assert.True(rounds > 1);
        Assert.False(new PrivacyLedger().WouldExceed(4, 1e-5, 0.1, 1.0));
    }
}
