using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Learning.Compression;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;

namespace Federated.Client.Tests;

/// <summary>The version-2 state directory: upgrade from version 1, pending uploads, the continual slot, the status command.</summary>
public sealed class StateDirectoryTests
{
    [Fact]
    public void Load_Version1File_IsReadAndUpgradedOnTheNextSave()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        File.WriteAllText(store.StatePath, "{ \"version\": 1, \"agentId\": \"agent-1\", \"lastRound\": 4, \"modelName\": \"mlp\" }");

        var state = store.Load();
        store.Save(state with { LastRound = 5 });

        Assert.Equal("agent-1", state.AgentId);
        Assert.Equal(4, state.LastRound);
        Assert.Equal("mlp", state.ModelName);
        Assert.Equal(2, store.Load().Version);
        Assert.Equal(5, store.Load().LastRound);
    }

    [Fact]
    public void EnsureLayout_CreatesPendingAndContinualSlots_AndLeavesContinualContentAlone()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        store.EnsureLayout();
        File.WriteAllText(Path.Combine(store.ContinualDirectory, "state.bin"), "replay");

        store.EnsureLayout();
        store.Save(new AgentState { AgentId = "a" });

        Assert.True(Directory.Exists(store.PendingDirectory));
        Assert.Equal("replay", File.ReadAllText(Path.Combine(store.ContinualDirectory, "state.bin")));
    }

    [Fact]
    public void SavePending_ThenRecover_GivesTheSameBytesAndPutsTheResidualAndStrategyStateBack()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        store.EnsureLayout();
        var (payload, header, result) = Update("agent-t1", "t1", 3);
        var residual = Residual([0.5f, -1f, 2f]);
        var expected = residual.Residual.ToArray();
        store.SaveResidual(new ErrorFeedback(3)); // the older residual the agent would have on disk
        store.SavePending(payload, header, result, residual, new Dictionary<string, float[]> { ["c_local"] = [1f, 2f] }, DateTimeOffset.UnixEpoch);

        var recovered = Assert.Single(store.RecoverPending());

        Assert.Equal(payload.Bytes, recovered.Payload.Bytes);
        Assert.Equal(payload.Sha256, recovered.Payload.Sha256);
        Assert.Equal(header, recovered.Header);
        Assert.Equal(result, recovered.Result);
        Assert.Equal(3, recovered.Manifest.Round);
        Assert.Contains(expected, v => v != 0);
        Assert.Equal(expected, ErrorFeedback.Load(store.ResidualPath, 3).Residual.ToArray());
        Assert.Equal([1f, 2f], store.LoadLocalState()["c_local"]);
        Assert.Single(store.ListPending());

        store.DeletePending(payload.TransferId);
        Assert.Empty(store.RecoverPending());
    }

    [Fact]
    public void RecoverPending_HalfWrittenFolder_IsRemovedAndNothingIsRecovered()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        store.EnsureLayout();
        var half = Path.Combine(store.PendingDirectory, ".0123.tmp");
        Directory.CreateDirectory(half);
        File.WriteAllText(Path.Combine(half, "payload.bin"), "partial");
        var corrupt = Path.Combine(store.PendingDirectory, "agent-t9");
        Directory.CreateDirectory(corrupt);
        File.WriteAllText(Path.Combine(corrupt, "manifest.json"), "{ not json");

        Assert.Empty(store.RecoverPending());
        Assert.False(Directory.Exists(half));
        Assert.False(Directory.Exists(corrupt));
    }

    [Fact]
    public void StatusCommand_ShowsIdentityRoundLastResultAndQueuedWork()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        store.EnsureLayout();
        store.Save(new AgentState
        {
            AgentId = "agent-s",
            LastRound = 6,
            LastTaskId = "t6",
            Device = "cpu",
            LastResult = new TaskSummary { TaskId = "t6", Round = 6, Kind = "train", Ok = true, Examples = 50, Loss = 0.25, Accuracy = 0.9, Delivered = false },
        });
        var (payload, header, result) = Update("agent-s-t6", "t6", 6);
        store.SavePending(payload, header, result, null, null, DateTimeOffset.UnixEpoch);
        var output = new StringWriter();
        var error = new StringWriter();

        var code = AgentCommands.Run(["status", $"--Client:StateDirectory={dir.Path}"], output, error, dir.Path);

        Assert.True(code == 0, error.ToString());
        var text = output.ToString();
        Assert.Contains("agent:        agent-s", text, StringComparison.Ordinal);
        Assert.Contains("last round:   6 (task t6)", text, StringComparison.Ordinal);
        Assert.Contains("last result:  train round 6 task t6: ok, 50 examples, loss 0.2500, accuracy 90.0 %, not yet delivered", text, StringComparison.Ordinal);
        Assert.Contains("queued work:  1 pending upload(s): agent-s-t6 (round 6,", text, StringComparison.Ordinal);
        Assert.Contains("device:       cpu", text, StringComparison.Ordinal);
    }

    [Fact]
    public void PauseAndResumeCommands_CreateAndRemoveThePauseFile()
    {
        using var dir = new TempDirectory();
        var pauseFile = Path.Combine(dir.Path, "pause");

        Assert.Equal(0, AgentCommands.Run(["pause", $"--Client:StateDirectory={dir.Path}"], TextWriter.Null, TextWriter.Null, dir.Path));
        Assert.True(File.Exists(pauseFile));
        Assert.Equal(0, AgentCommands.Run(["resume", $"--Client:StateDirectory={dir.Path}"], TextWriter.Null, TextWriter.Null, dir.Path));
        Assert.False(File.Exists(pauseFile));
    }

    [Fact]
    public void StatusCommand_UnknownArgument_ExitsNonZeroWithASentence()
    {
        var error = new StringWriter();

        var code = AgentCommands.Run(["status", "--verbose"], TextWriter.Null, error, Path.GetTempPath());

        Assert.Equal(2, code);
        Assert.Contains("unknown argument '--verbose'", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A residual with something in it: what top-k of <paramref name="delta"/> drops.</summary>
    private static ErrorFeedback Residual(float[] delta)
    {
        var feedback = new ErrorFeedback(delta.Length);
        feedback.Encode(DeltaCodecs.Parse("topk:ratio=0.34"), delta, new System.Buffers.ArrayBufferWriter<byte>(), CodecRandom.ForSender("t", 1, 1));
        return feedback;
    }

    private static (SealedPayload Payload, UploadHeader Header, TaskResult Result) Update(string transferId, string taskId, int round)
    {
        var payload = new Payload { LayoutFingerprint = "layout" };
        PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, Enumerable.Range(0, 3000).Select(i => i * 0.001f).ToArray());
        var sealedPayload = new SealedPayload(transferId, payload, 4096);
        var result = new TaskResult { TaskId = taskId, Round = round, Ok = true, UploadTransferId = transferId, NumExamples = 50, Metrics = { ["train_loss"] = 0.25 } };
        return (sealedPayload, sealedPayload.ToUploadHeader(taskId, round), result);
    }
}
