using Federated.Simulations.Fuzz;

namespace Federated.Simulations.Tests;

/// <summary>The fuzz engine finds what it is for, and the coordinator's decoders survive a fixed CI budget.</summary>
public sealed class FuzzTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("federated-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Engine_ReportsCrashesHangsAndOverAllocations_AndSavesTheInputs()
    {
        var engine = new FuzzEngine(7, TimeSpan.FromSeconds(2), Path.Combine(_dir, "findings"));

        var crash = await engine.RunAsync(new FakeTarget(input => input.Length > 3 && input[1] == 0x7F ? throw new InvalidCastException("boom") : FuzzVerdict.Rejected), 3000, CancellationToken.None);
        var allocation = await engine.RunAsync(new FakeTarget(input => { GC.KeepAlive(new byte[4 << 20]); return FuzzVerdict.Accepted; }), 5, CancellationToken.None);
        using var release = new ManualResetEventSlim();
        var hang = await engine.RunAsync(new FakeTarget(input => { release.Wait(TimeSpan.FromSeconds(30)); return FuzzVerdict.Accepted; }), 50, CancellationToken.None);
        release.Set();

        Assert.True(crash.Crashes > 0, "a decoder that throws an undocumented exception is a crash");
        Assert.Contains(crash.Findings, f => f.Contains("InvalidCastException", StringComparison.Ordinal));
        Assert.False(crash.Clean);
        Assert.Equal(5, allocation.OverAllocations);
        Assert.True(allocation.MaxAllocatedBytes >= 4 << 20);
        Assert.Equal(1, hang.Hangs);
        Assert.True(hang.Inputs < 50, "the campaign of a target stops at its first hang");
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_dir, "findings"), "*.bin"));
    }

    [Fact]
    public async Task Engine_AcceptedMutantsJoinTheCorpus()
    {
        var engine = new FuzzEngine(3, TimeSpan.FromSeconds(5), null);

        var result = await engine.RunAsync(new FakeTarget(input => input.Length % 2 == 0 ? FuzzVerdict.Accepted : FuzzVerdict.Rejected), 2000, CancellationToken.None);

        Assert.Equal(2000, result.Inputs);
        Assert.Equal(2000, result.Accepted + result.Rejected);
        Assert.True(result.CorpusSize > 100, $"corpus {result.CorpusSize}");
        Assert.True(result.Clean);
    }

    [Fact]
    public async Task Campaign_EveryDecoderAndRpc_IsCleanAndTheFuzzedCoordinatorStillRunsItsFederation()
    {
        // The CI budget; `federated-sim fuzz` runs 20,000 inputs per target by default (docs/results/async-and-faults.md).
        var settings = new FuzzSettings(400, 11, [], TimeSpan.FromSeconds(30), Path.Combine(_dir, "campaign"));

        var report = await new FuzzRunner(settings, TextWriter.Null).RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(5));

        Assert.Equal(FuzzRunner.TargetNames.Order(StringComparer.Ordinal), report.Targets.Select(t => t.Target).Order(StringComparer.Ordinal));
        Assert.All(report.Targets, t => Assert.Equal(400, t.Inputs));
        Assert.All(report.Targets, t => Assert.True(t.Clean, $"{t.Target}: {string.Join("; ", t.Findings)}"));
        Assert.All(report.Targets.Where(t => !t.Target.StartsWith("grpc:Download", StringComparison.Ordinal)), t => Assert.True(t.Accepted > 0, $"{t.Target} accepted nothing: its seeds or the token are broken"));
        Assert.True(report.HeapGrowthBytes < FuzzReport.HeapGrowthLimit);
        Assert.Equal(2, report.FederationRounds);
        Assert.True(report.Clean);
        Assert.True(File.Exists(Path.Combine(settings.OutputDirectory, "fuzz.md")));
    }

    private sealed class FakeTarget(Func<byte[], FuzzVerdict> run) : IFuzzTarget
    {
        public string Name => "fake";

        public string Contract => "none";

        public bool MeasuresAllocation => true;

        public IReadOnlyList<byte[]> Seeds { get; } = [[1, 2, 3, 4, 5, 6, 7, 8], [0x10, 0x7F, 0, 0]];

        public long AllocationLimit(int length) => 1 << 20;

        public ValueTask<FuzzVerdict> RunAsync(byte[] input, CancellationToken cancellationToken) => ValueTask.FromResult(run(input));
    }
}
