using Federated.Learning.Robustness;
using Federated.Learning.Strategies;
using static Federated.Learning.Tests.Strategies.StrategyTestKit;

namespace Federated.Learning.Tests.Robustness;

public sealed class UpdateValidatorTests
{
    [Fact]
    public void Validate_BadUpdates_AreRejectedWithTheirReasons()
    {
        ClientUpdate[] updates =
        [
            Update("ok1", 10, [1, 0, 0]),
            Update("nan", 10, [1, float.NaN, 0]),
            Update("inf", 10, [float.NegativeInfinity, 0, 0]),
            Update("short", 10, [1, 0]),
            Update("zero-examples", 0, [1, 0, 0]),
            Update("ok1", 10, [0, 1, 0]),
            Update("", 10, [0, 1, 0]),
            Update("ok2", 10, [0, 1, 0]),
            Update("ok3", 10, [0, 0, 1]),
            new ClientUpdate { ClientId = "bad-tensor", NumExamples = 1, Delta = [0, 0, 1], Tensors = new Dictionary<string, float[]> { ["extra"] = [1] } },
        ];

        var result = new UpdateValidator().Validate(updates, 3);

        Assert.Equal(["ok1", "ok2", "ok3"], result.Accepted.Select(u => u.ClientId));
        Assert.Equal([1, 0, 0], result.Accepted[0].Delta); // the first update of "ok1" counts
        var reasons = result.Rejections.Select(r => (r.ClientId, r.Reason)).ToList();
        Assert.Equal(
            [
                ("nan", RejectionReason.NonFinite),
                ("inf", RejectionReason.NonFinite),
                ("short", RejectionReason.LengthMismatch),
                ("zero-examples", RejectionReason.InvalidExamples),
                ("ok1", RejectionReason.DuplicateClient),
                ("", RejectionReason.MissingClientId),
                ("bad-tensor", RejectionReason.LengthMismatch),
            ],
            reasons);
        Assert.Contains("2 floats", result.Rejections[2].Message, StringComparison.Ordinal);
        Assert.Contains("'extra'", result.Rejections[6].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NormsFarOutsideTheCohort_AreRejected()
    {
        // Norms 1, 1.2, 0.9, 1.1, 50, 0.001: median (1 + 1.1)/2 = 1.05.
        ClientUpdate[] updates =
        [
            Update("a", 1, [1, 0]), Update("b", 1, [0, 1.2f]), Update("c", 1, [0.9f, 0]),
            Update("d", 1, [0, 1.1f]), Update("boosted", 1, [30, 40]), Update("free-rider", 1, [0.001f, 0]),
        ];

        // k = 10: 50 > 10.5 is rejected; the tiny one is kept unless a lower ratio is set.
        var lenient = new UpdateValidator().Validate(updates, 2);
        var only = Assert.Single(lenient.Rejections);
        Assert.Equal(("boosted", RejectionReason.NormTooLarge), (only.ClientId, only.Reason));
        Assert.Contains("median norm 1.05", only.Message, StringComparison.Ordinal);

        var strict = new UpdateValidator(new UpdateValidationOptions { MaxNormRatio = 1.1, MinNormRatio = 0.5 }).Validate(updates, 2);
        Assert.Equal(["a", "c", "d"], strict.Accepted.Select(u => u.ClientId));
        Assert.Equal(
            [("b", RejectionReason.NormTooLarge), ("boosted", RejectionReason.NormTooLarge), ("free-rider", RejectionReason.NormTooSmall)],
            strict.Rejections.Select(r => (r.ClientId, r.Reason)));

        var absolute = new UpdateValidator(new UpdateValidationOptions { MaxNormRatio = null, MaxNorm = 1.15 }).Validate(updates, 2);
        Assert.Equal(["b", "boosted"], absolute.Rejections.Select(r => r.ClientId));

        var off = new UpdateValidator(new UpdateValidationOptions { MaxNormRatio = null }).Validate(updates, 2);
        Assert.Empty(off.Rejections);
    }

    [Fact]
    public void AddMetrics_CountsEveryReason()
    {
        var result = new UpdateValidator().Validate([Update("a", 1, [1]), Update("b", 1, [float.NaN]), Update("c", 1, [float.NaN]), Update("d", 0, [1])], 1);
        var metrics = new Dictionary<string, double>();
        result.AddMetrics(metrics);
        Assert.Equal(3, metrics["rejected"]);
        Assert.Equal(2, metrics["rejected.non_finite"]);
        Assert.Equal(1, metrics["rejected.invalid_examples"]);
        Assert.Equal("non_finite: Client 'b' sent a delta with non-finite values (NaN or infinity).", result.Rejections[0].ToFailure().Reason);
    }

    [Fact]
    public void Options_OutOfRange_AreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpdateValidator(new UpdateValidationOptions { MaxNormRatio = 0.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpdateValidator(new UpdateValidationOptions { MinNormRatio = 2 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpdateValidator(new UpdateValidationOptions { MaxNorm = 0 }));
    }
}
