using Federated.Learning.Runtime;
using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// Multi-head output for task-incremental learning without extra parameters: wraps a model whose output has one
/// unit per class and, for every sample, pushes the logits of classes outside that sample's task to −10⁹, so the
/// softmax, the loss and the arg-max only see the task's own head. The task of a sample comes from its target
/// (<see cref="SetTargets"/>): in task-incremental scenarios the task identity is given, at training and at test
/// time alike. The wrapper registers the inner model's children under their own names, so its parameters are
/// exactly the inner model's (<c>fc1.weight</c>, …): a federated model keeps its shape and wire names. With no
/// targets set the wrapper is the inner model. Only the children's training mode follows <c>train()</c>/<c>eval()</c>.
/// </summary>
public sealed class TaskHeadMask : nn.Module<Tensor, Tensor>
{
    /// <summary>The value masked logits take (finite, so that distillation over them stays finite).</summary>
    public const double MaskedLogit = -1e9;

    private readonly nn.Module<Tensor, Tensor> _inner;
    private readonly Tensor _bias;
    private readonly Tensor _classTask;
    private Tensor? _taskIds;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="classToTask"/>[c] is the task class c belongs to.</summary>
    public TaskHeadMask(nn.Module<Tensor, Tensor> inner, IReadOnlyList<int> classToTask, Device? device = null) : base(nameof(TaskHeadMask))
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(classToTask);
        if (classToTask.Count < 2 || classToTask.Any(t => t < 0))
        {
            throw new ArgumentException("Every class needs a task id ≥ 0, and there must be at least two classes.", nameof(classToTask));
        }

        _inner = inner;
        var classes = classToTask.ToArray();
        ClassToTask = classes;
        Tasks = classes.Max() + 1;
        var bias = new float[Tasks * classes.Length];
        Array.Fill(bias, (float)MaskedLogit);
        for (var c = 0; c < classes.Length; c++)
        {
            bias[classes[c] * classes.Length + c] = 0;
        }

        device ??= inner.parameters().FirstOrDefault()?.device ?? torch.CPU;
        _bias = torch.tensor(bias, [Tasks, classes.Length], device: device).DetachFromDisposeScope();
        _classTask = torch.tensor(classes.Select(t => (long)t).ToArray(), device: device).DetachFromDisposeScope();
        foreach (var (name, child) in inner.named_children())
        {
            register_module(name, child);
        }
    }

    /// <summary>The task of every class.</summary>
    public IReadOnlyList<int> ClassToTask { get; }

    /// <summary>Number of tasks (heads).</summary>
    public int Tasks { get; }

    /// <summary>The inner model's logits of the last forward pass, before masking (for distillation).</summary>
    public Tensor? LastLogits { get; private set; }

    /// <summary>Masks the next forward passes by the tasks of <paramref name="targets"/> (null: no mask).</summary>
    public void SetTargets(Tensor? targets) => _taskIds = targets is null ? null : _classTask.index_select(0, targets);

    /// <summary>Calls <see cref="SetTargets"/> when <paramref name="model"/> is a <see cref="TaskHeadMask"/>; otherwise does nothing.</summary>
    public static void Prepare(nn.Module model, Tensor? targets)
    {
        if (model is TaskHeadMask mask)
        {
            mask.SetTargets(targets);
        }
    }

    /// <summary>The logits to distil from: the unmasked ones when <paramref name="model"/> is a mask, else <paramref name="output"/>.</summary>
    public static Tensor RawLogits(nn.Module model, Tensor output) => model is TaskHeadMask { LastLogits: { } raw } ? raw : output;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var raw = _inner.call(input);
        LastLogits = raw;
        if (_taskIds is null)
        {
            return raw;
        }

        if (_taskIds.shape[0] != raw.shape[0])
        {
            throw new InvalidOperationException($"The task mask was set for {_taskIds.shape[0]} samples but the batch has {raw.shape[0]}.");
        }

        return raw.add(_bias.index_select(0, _taskIds), TorchScalars.One);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _bias.Dispose();
            _classTask.Dispose();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Sets a <see cref="TaskHeadMask"/>'s per-sample tasks from each batch's targets (register it after any plug-in that rewrites the batch).</summary>
public sealed class TaskHeadPlugin(TaskHeadMask mask) : ITrainingPlugin
{
    /// <inheritdoc />
    public void BeforeBatch(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        mask.SetTargets(context.Targets);
    }

    /// <inheritdoc />
    public void AfterBatch(TrainingContext context) => mask.SetTargets(null);

    /// <inheritdoc />
    public void AfterTraining(TrainingContext context) => mask.SetTargets(null);
}
