using Federated.Learning.Continual;
using Federated.Learning.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Continual;

public sealed class ContinualStateTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"continual-state-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static ContinualState Populated(out nn.Module<Tensor, Tensor> model)
    {
        torch.manual_seed(4);
        model = new Mlp(new ModelShape(1, 4, 4, 4), [8]);
        var state = new ContinualState();
        var ewc = new EwcPlugin(new EwcOptions { FisherSamples = 16 }, state);
        using var replay = new ReplayPlugin(new ReplayOptions { Policy = ReplayPolicy.ClassBalanced, Budget = 12, Seed = 3 }, state);
        var copy = model;
        var lwf = new LwfPlugin(new LwfOptions(), state, () => new Mlp(new ModelShape(1, 4, 4, 4), [8]));
        var learner = new ContinualLearner(model, state, [ewc, replay, lwf]);
        for (var e = 0; e < 2; e++)
        {
            using var data = ContinualTestData.Images(40, seed: 10 + e);
            learner.EndExperience(data);
        }

        return state;
    }

    [Fact]
    public void SaveThenLoad_RestoresIdenticalTensorsBufferAndCounters()
    {
        using var state = Populated(out var model);
        using (model)
        {
            state.Save(_directory);

            using var loaded = ContinualState.Load(_directory);

            Assert.Equal(2, loaded.Experience);
            Assert.Equal(state.SeenClasses, loaded.SeenClasses);
            Assert.Equal(state.EwcTerms.Select(t => (t.Experience, t.Samples)), loaded.EwcTerms.Select(t => (t.Experience, t.Samples)));
            var before = state.NamedTensors().ToDictionary(p => p.Key, p => p.Value);
            var after = loaded.NamedTensors().ToDictionary(p => p.Key, p => p.Value);
            Assert.Equal(before.Keys.Order(), after.Keys.Order());
            foreach (var (name, tensor) in before)
            {
                Assert.True(ContinualTestData.Same(tensor, after[name]), name);
            }

            Assert.Equal(ReplayPolicy.ClassBalanced, loaded.Replay!.Policy);
            Assert.Equal(12, loaded.Replay.Budget);
            Assert.Equal(state.Replay!.Labels, loaded.Replay.Labels);
            Assert.Equal(state.Replay.Experiences, loaded.Replay.Experiences);
            Assert.Equal(state.Replay.Seen, loaded.Replay.Seen);
        }
    }

    [Fact]
    public void Load_ThenContinue_BehavesLikeTheStateThatWasNeverSaved()
    {
        using var state = Populated(out var model);
        using (model)
        {
            state.Save(_directory);
            using var loaded = ContinualState.Load(_directory);
            using var data = ContinualTestData.Images(40, seed: 30);

            state.Replay!.Add(data, 2);
            loaded.Replay!.Add(data, 2);

            Assert.Equal(state.Replay.Labels, loaded.Replay.Labels);
            Assert.True(ContinualTestData.Same(state.Replay.Features!, loaded.Replay.Features!));
        }
    }

    [Fact]
    public void Save_Twice_KeepsOneTensorFileAndNoTemporaries()
    {
        using var state = Populated(out var model);
        using (model)
        {
            state.Save(_directory);
            state.Experience++;
            state.Save(_directory);

            var files = Directory.GetFiles(_directory).Select(Path.GetFileName).ToArray();
            Assert.Equal(2, files.Length);
            Assert.Contains(ContinualState.ManifestFile, files);
            Assert.Single(files, f => f!.StartsWith("state-3-", StringComparison.Ordinal));
            using var loaded = ContinualState.Load(_directory);
            Assert.Equal(3, loaded.Experience);
        }
    }

    [Fact]
    public void Load_MissingTensorFile_IsAnError()
    {
        using var state = Populated(out var model);
        using (model)
        {
            state.Save(_directory);
            foreach (var file in Directory.GetFiles(_directory, "state-*.safetensors"))
            {
                File.Delete(file);
            }

            Assert.ThrowsAny<IOException>(() => ContinualState.Load(_directory));
        }
    }
}
