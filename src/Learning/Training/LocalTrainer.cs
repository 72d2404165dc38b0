using Federated.Learning.Runtime;
using Federated.Learning.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Training;

/// <summary>
/// The one local training loop. It owns the order of operations; everything optional (EWC, replay, FedProx,
/// DP clipping, progress reports) is an <see cref="ITrainingPlugin"/>. Each batch runs inside its own dispose
/// scope, metrics stay on the device until the epoch ends, and the data never leaves its tensors.
/// </summary>
public sealed class LocalTrainer
{
    private readonly IReadOnlyList<ITrainingPlugin> _plugins;
    private readonly TimeProvider _time;
    private readonly Func<nn.Module<Tensor, Tensor>>? _createModel;

    /// <summary>
    /// Creates a trainer that fires <paramref name="plugins"/> in the given order. <paramref name="createModel"/> builds a
    /// model of the trained architecture (its weights are replaced); bf16 and fp16 training need it for the working copy.
    /// </summary>
    public LocalTrainer(IEnumerable<ITrainingPlugin>? plugins = null, TimeProvider? time = null, Func<nn.Module<Tensor, Tensor>>? createModel = null)
    {
        _plugins = plugins?.ToArray() ?? [];
        _time = time ?? TimeProvider.System;
        _createModel = createModel;
    }

    /// <summary>Trains <paramref name="model"/> in place on <paramref name="data"/>.</summary>
    public TrainingReport Train(nn.Module<Tensor, Tensor> model, TensorDataset data, TrainingOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (data.Count == 0)
        {
            throw new ArgumentException("Cannot train on an empty data set.", nameof(data));
        }

        if (options.Precision != TrainingPrecision.Fp32 && _createModel is null)
        {
            throw new ArgumentException($"{options.Precision.Name()} training needs a model factory for its working copy: pass createModel to the LocalTrainer.", nameof(options));
        }

        var parameters = model.parameters().ToArray();
        using var optimizer = Optimizers.LocalOptimizer.Create(parameters, options);
        using var shuffle = options.Shuffle ? new Generator((ulong)options.Seed) : null;
        model.train();
        using var mixed = options.Precision == TrainingPrecision.Fp32 ? null : MixedPrecision.Create(model, _createModel!, options);

        var context = new TrainingContext(model, optimizer, options, data, cancellationToken) { Mixed = mixed };
        var stepBudget = options.MaxSteps;
        var epochs = new List<EpochMetrics>(stepBudget > 0 ? 4 : options.Epochs);
        var cancelled = false;
        Fire(static (p, c) => p.BeforeTraining(c), context);
        for (var epoch = 0; (stepBudget > 0 ? context.Step < stepBudget : epoch < options.Epochs) && !cancelled; epoch++)
        {
            context.Epoch = epoch;
            Fire(static (p, c) => p.BeforeEpoch(c), context);
            var started = _time.GetTimestamp();
            using var lossSum = torch.zeros(1, ScalarType.Float64, device: data.Device);
            using var correct = torch.zeros(1, ScalarType.Int64, device: data.Device);
            long samples = 0;
            using (var batches = new EpochBatches(data, options.BatchSize, shuffle, options.DropLast))
            {
                if (batches.Count == 0 && stepBudget > 0)
                {
                    throw new ArgumentException($"MaxSteps needs at least one batch per epoch; {data.Count} samples with DropLast give none.", nameof(data));
                }

                for (var b = 0; b < batches.Count && (stepBudget == 0 || context.Step < stepBudget); b++)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        cancelled = true;
                        break;
                    }

                    context.BatchIndex = b;
                    samples += RunBatch(context, batches, b, parameters, lossSum, correct);
                }
            }

            var seconds = _time.GetElapsedTime(started).TotalSeconds;
            var metrics = samples == 0
                ? new EpochMetrics(epoch + 1, double.NaN, double.NaN, 0, seconds)
                : new EpochMetrics(epoch + 1, lossSum.item<double>() / samples, (double)correct.item<long>() / samples, samples, seconds);
            epochs.Add(metrics);
            context.LastEpoch = metrics;
            Fire(static (p, c) => p.AfterEpoch(c), context);
        }

        Fire(static (p, c) => p.AfterTraining(c), context);
        return new TrainingReport(epochs, context.Step, cancelled)
        {
            Precision = options.Precision,
            SkippedSteps = mixed?.Scaler?.SkippedSteps ?? 0,
            LossScale = mixed?.Scaler?.Scale,
        };
    }

    private int RunBatch(TrainingContext context, EpochBatches batches, int index, TorchSharp.Modules.Parameter[] parameters, Tensor lossSum, Tensor correct)
    {
        using var scope = torch.NewDisposeScope();
        var (inputs, targets) = batches.Get(index);
        context.Inputs = inputs;
        context.Targets = targets;
        Fire(static (p, c) => p.BeforeBatch(c), context);

        var mixed = context.Mixed;
        context.Optimizer.ZeroGrad();
        mixed?.ZeroWorkingGradients();
        var output = mixed is null ? context.Model.call(context.Inputs!) : mixed.Forward(context.Inputs!);
        var dataLoss = nn.functional.cross_entropy(output, context.Targets!);
        context.Output = output;
        context.DataLoss = dataLoss;
        context.Loss = dataLoss;
        Fire(static (p, c) => p.AfterForward(c), context);

        var finite = true;
        if (mixed is null)
        {
            context.Loss!.backward();
        }
        else
        {
            mixed.Backward(context.Loss!);
            finite = mixed.CollectGradients();
            finite = mixed.Scaler?.Update(finite) ?? finite;
        }

        // fp16 with overflowing gradients: no gradient hooks, no step (the master weights stay as they are).
        if (finite)
        {
            Fire(static (p, c) => p.AfterBackward(c), context);
            if (context.Options.GradientClipNorm > 0)
            {
                ClipGradientNorm(parameters, context.Options.GradientClipNorm);
            }

            context.Optimizer.Step();
            mixed?.AfterStep();
        }

        mixed?.CopyBuffersToMaster();
        context.Step++;
        Fire(static (p, c) => p.AfterStep(c), context);

        var n = (int)context.Targets!.shape[0];
        using (torch.no_grad())
        using (var weight = n.ToScalar())
        {
            lossSum.add_(dataLoss.detach().to(ScalarType.Float64), weight);
            correct.add_(output.argmax(1).eq(context.Targets).sum(), TorchScalars.One);
        }

        Fire(static (p, c) => p.AfterBatch(c), context);
        context.Inputs = null;
        context.Targets = null;
        context.Output = null;
        context.DataLoss = null;
        context.Loss = null;
        return n;
    }

    private void Fire(Action<ITrainingPlugin, TrainingContext> hook, TrainingContext context)
    {
        foreach (var plugin in _plugins)
        {
            hook(plugin, context);
        }
    }

    /// <summary>Scales all gradients so that their global L2 norm is at most <paramref name="maxNorm"/> (PyTorch's <c>clip_grad_norm_</c>).</summary>
    internal static double ClipGradientNorm(IReadOnlyList<TorchSharp.Modules.Parameter> parameters, double maxNorm)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0)
        {
            return 0;
        }

        var total = Math.Sqrt(torch.stack(grads.Select(g => g.mul(g).sum().to(ScalarType.Float64)).ToList()).sum().item<double>());
        var coefficient = maxNorm / (total + 1e-6);
        if (coefficient < 1)
        {
            using var scale = coefficient.ToScalar();
            foreach (var g in grads)
            {
                g.mul_(scale);
            }
        }

        return total;
    }
}
