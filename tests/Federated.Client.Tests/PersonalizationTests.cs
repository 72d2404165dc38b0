using Federated.Client.Hosting;
using Federated.Client.State;
using Federated.Client.Training;
using Federated.Learning.Models;
using Federated.Learning.Personalization;
using Federated.Learning.Runtime;
using Federated.Learning.Training;
using Federated.Learning.Weights;
using Federated.Protocol.Transfers;
using Federated.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Federated.Client.Tests;

/// <summary>FedPer's local head and Ditto's personal model on a real agent's training service, across rounds and a restart.</summary>
public sealed class PersonalizationTests
{
    private static readonly ClientDataOptions DataOptions = new() { Source = "synthetic", SyntheticCount = 400, Clients = 4, Index = 1, MaxExamples = 96, LocalTestFraction = 0.25 };

    private static LocalTrainingService Service(AgentStateStore store, AgentState restored)
    {
        var (data, test) = LocalDataLoader.LoadWithLocalTest(DataOptions, torch.CPU);
        Assert.NotNull(test);
        return new LocalTrainingService(data, ComputeContext.Cpu, store, restored, NullLogger.Instance, TimeProvider.System, localTest: test);
    }

    private sealed class Federation : IDisposable
    {
        private readonly torch.nn.Module<torch.Tensor, torch.Tensor> _reference;

        public Federation()
        {
            _reference = ModelFactory.Create("mlp", ModelShape.FromSample([1, 28, 28], 10), torch.CPU, seed: 3);
            Weights = new ModelWeights(_reference);
            Global = Weights.Flatten();
        }

        public ModelWeights Weights { get; }

        public float[] Global { get; }

        public string Fingerprint => Weights.Layout.Fingerprint;

        public (float[] Delta, IReadOnlyDictionary<string, double> Metrics) Train(LocalTrainingService service, int round, Dictionary<string, string> config)
        {
            var payload = new Payload { LayoutFingerprint = Fingerprint };
            PayloadCodec.AddDense(payload, PayloadCodec.ModelTensor, Global);
            var task = new TrainTask
            {
                TaskId = $"t{round}",
                Round = round,
                ModelName = "mlp",
                LayoutFingerprint = Fingerprint,
                Training = new TrainingConfig { Epochs = 2, BatchSize = 16, Optimizer = "sgd", LearningRate = 0.1, Seed = round },
            };
            task.Config.Add(config);
            var outcome = service.Train(task, Google.Protobuf.MessageExtensions.ToByteArray(payload), $"a-t{round}", 1 << 20, CancellationToken.None);
            var update = PayloadCodec.Parse(outcome.Update.Bytes, Fingerprint);
            return (PayloadCodec.ReadDense(update, PayloadCodec.ModelTensor, Weights.Layout.TotalLength), outcome.Metrics);
        }

        /// <summary>The reference model loaded with <paramref name="model"/>, evaluated on <paramref name="data"/>.</summary>
        public EvaluationResult Evaluate(float[] model, Learning.Data.TensorDataset data)
        {
            Weights.Load(model);
            var result = Evaluator.Evaluate(_reference, data);
            Weights.Load(Global);
            return result;
        }

        public void Dispose() => _reference.Dispose();
    }

    [Fact]
    public void FedPer_HeadIsNeverUploaded_AndTheAgentKeepsItAcrossRoundsAndARestart()
    {
        using var dir = new TempDirectory();
        using var federation = new Federation();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var config = new Dictionary<string, string> { [FedPer.HeadLayersKey] = "1" };
        var head = HeadSelection.LastLayers(1).Resolve(federation.Weights.Layout);
        float[] kept;
        using (var service = Service(store, new AgentState { AgentId = "a" }))
        {
            var (delta, metrics) = federation.Train(service, 1, config);

            Assert.All(HeadSelection.Extract(head, delta), d => Assert.Equal(0f, d));
            Assert.Contains(delta[..(int)head[0].Offset], d => d != 0);
            kept = service.LocalState[PersonalHead.StateKey].ToArray();
            Assert.NotEqual(HeadSelection.Extract(head, federation.Global), kept);
            // Round 1: the agent had no head yet, so it used (and evaluated) the global model.
            Assert.Equal(federation.Evaluate(federation.Global, service.LocalTest!).Loss, metrics["local_test_loss"], 5);
            service.Persist(new AgentState { AgentId = "a", LastRound = 1, LastTaskId = "t1" });
        }

        using (var restarted = Service(store, store.Load()))
        {
            Assert.Equal(kept, restarted.LocalState[PersonalHead.StateKey]);

            var (delta, metrics) = federation.Train(restarted, 2, config);

            // Round 2 after the restart: the global body under the kept head is the model the agent used.
            var used = federation.Global.ToArray();
            HeadSelection.Insert(head, kept, used);
            var expected = federation.Evaluate(used, restarted.LocalTest!);
            Assert.Equal(expected.Accuracy, metrics[LocalTrainingService.LocalTestAccuracyKey], 5);
            Assert.Equal(expected.Loss, metrics["local_test_loss"], 5);
            Assert.NotEqual(federation.Evaluate(federation.Global, restarted.LocalTest!).Loss, metrics["local_test_loss"], 3);
            Assert.All(HeadSelection.Extract(head, delta), d => Assert.Equal(0f, d));
            Assert.NotEqual(kept, restarted.LocalState[PersonalHead.StateKey]);
        }
    }

    [Fact]
    public void Ditto_PersonalModelDiffersFromTheGlobal_PersistsAcrossARestart_AndIsWhatTheAgentEvaluates()
    {
        using var dir = new TempDirectory();
        using var federation = new Federation();
        var store = new AgentStateStore(dir.Path, NullLogger<AgentStateStore>.Instance);
        var config = new Dictionary<string, string> { [Ditto.LambdaKey] = "0.1", [Ditto.EpochsKey] = "2" };
        float[] personal;
        using (var service = Service(store, new AgentState { AgentId = "a" }))
        {
            var (delta, metrics) = federation.Train(service, 1, config);

            personal = service.LocalState[DittoPersonalModel.StateKey].ToArray();
            var uploaded = new float[delta.Length];
            WeightVectors.Apply(federation.Global, delta, uploaded);
            Assert.NotEqual(federation.Global, personal);
            Assert.NotEqual(uploaded, personal);
            Assert.Contains(delta, d => d != 0);
            Assert.True(double.IsFinite(metrics["ditto_personal_loss"]));
            Assert.Equal(federation.Evaluate(federation.Global, service.LocalTest!).Loss, metrics["local_test_loss"], 5);
            service.Persist(new AgentState { AgentId = "a", LastRound = 1, LastTaskId = "t1" });
        }

        using (var restarted = Service(store, store.Load()))
        {
            Assert.Equal(personal, restarted.LocalState[DittoPersonalModel.StateKey]);

            var (_, metrics) = federation.Train(restarted, 2, config);

            var expected = federation.Evaluate(personal, restarted.LocalTest!);
            Assert.Equal(expected.Accuracy, metrics[LocalTrainingService.LocalTestAccuracyKey], 5);
            Assert.Equal(expected.Loss, metrics["local_test_loss"], 5);
            Assert.NotEqual(personal, restarted.LocalState[DittoPersonalModel.StateKey]);
        }
    }

    [Fact]
    public void SplitLocalTest_HoldsOutEachClassesShare_AndKeepsEveryIndexOnce()
    {
        // 50 examples of class 0, 30 of class 1, 19 of class 2, 1 of class 3 (by index).
        var labels = Enumerable.Range(0, 100).Select(i => i < 50 ? 0 : i < 80 ? 1 : i < 99 ? 2 : 3).ToArray();
        var indices = Enumerable.Range(0, 100).ToArray();

        var (train, test) = LocalDataLoader.SplitLocalTest(indices, labels, 0.2, seed: 7);
        var (_, other) = LocalDataLoader.SplitLocalTest(indices, labels, 0.2, seed: 8);

        Assert.Equal([10, 6, 4], test.GroupBy(i => labels[i]).OrderBy(g => g.Key).Select(g => g.Count()));
        Assert.Equal(indices, train.Concat(test).Order());
        Assert.Equal(train.Order(), train);
        Assert.Contains(99, train); // a class of one example stays in training
        Assert.NotEqual(test, other);
        Assert.Empty(LocalDataLoader.SplitLocalTest(indices, labels, 0, seed: 7).Test);
    }
}
