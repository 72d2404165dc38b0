using Federated.Client.State;
using Federated.Learning.Models;
using Federated.Learning.Weights;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

public sealed class AgentStateStoreTests
{
    [Fact]
    public void State_RoundTrips_AndWritesTheCurrentVersion()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        Assert.Null(store.Load().AgentId);

        var state = new AgentState { AgentId = "agent-7", LastRound = 12, LastTaskId = "t-12", ModelName = "cnn", LayoutFingerprint = "abc" };
        store.Save(state);
        var loaded = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance).Load();
        Assert.Equal(state, loaded);
        Assert.Contains($"\"version\": {AgentState.CurrentVersion}", File.ReadAllText(store.StatePath), StringComparison.Ordinal);
    }

    [Fact]
    public void AtomicWrites_LeaveNoTemporaryFiles()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(Path.Combine(dir.Path, "nested"), NullLogger<AgentStateStore>.Instance);
        for (var i = 0; i < 5; i++)
        {
            store.Save(new AgentState { AgentId = "a", LastRound = i });
        }

        store.SaveLocalState(new Dictionary<string, float[]> { ["scaffold.c_local"] = [1f, 2f, 3f] });
        var files = Directory.GetFiles(store.Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { AgentStateStore.LocalStateFileName, AgentStateStore.StateFileName }, files);
        Assert.Equal(4, store.Load().LastRound);
    }

    [Fact]
    public void CorruptFile_StartsFresh_KeepingTheAgentId()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        File.WriteAllText(store.StatePath, "{ \"version\": 1, \"agentId\": \"agent-42\", \"lastRound\": 3");
        var state = store.Load();
        Assert.Equal("agent-42", state.AgentId);
        Assert.Equal(0, state.LastRound);

        File.WriteAllText(store.StatePath, "\0\0garbage");
        Assert.Null(store.Load().AgentId);
    }

    [Fact]
    public void FutureVersion_StartsFresh_KeepingTheAgentId()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        File.WriteAllText(store.StatePath, "{ \"version\": 9, \"agentId\": \"agent-9\", \"lastRound\": 30, \"somethingNew\": [1] }");
        var state = store.Load();
        Assert.Equal("agent-9", state.AgentId);
        Assert.Equal(0, state.LastRound);
    }

    [Fact]
    public void LocalState_RoundTrips_AndCorruptFileIsIgnored()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        store.SaveLocalState(new Dictionary<string, float[]> { ["b"] = [0.5f], ["a"] = [1f, -2f] });
        var loaded = store.LoadLocalState();
        Assert.Equal(new[] { 1f, -2f }, loaded["a"]);
        Assert.Equal(new[] { 0.5f }, loaded["b"]);

        File.WriteAllBytes(store.LocalStatePath, [1, 2, 3]);
        Assert.Empty(store.LoadLocalState());

        store.SaveLocalState(new Dictionary<string, float[]>());
        Assert.False(File.Exists(store.LocalStatePath));
    }

    [Fact]
    public void Model_IsRestoredOnlyForTheSameLayout()
    {
        using var dir = new TempDirectory();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        using var model = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU, seed: 1);
        var weights = new ModelWeights(model);
        store.SaveModel(weights, "mlp");
        var saved = weights.Flatten();

        using var other = ModelFactory.Create("mlp", ModelShape.Mnist, torch.CPU, seed: 2);
        var otherWeights = new ModelWeights(other);
        Assert.NotEqual(saved, otherWeights.Flatten());
        Assert.True(store.TryLoadModel(otherWeights));
        Assert.Equal(saved, otherWeights.Flatten());

        using var different = ModelFactory.Create("mlp", new ModelShape(1, 28, 28, 5), torch.CPU, seed: 1);
        Assert.False(store.TryLoadModel(new ModelWeights(different)));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }
}
