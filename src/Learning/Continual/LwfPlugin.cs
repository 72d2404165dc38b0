using Federated.Learning.Runtime;
using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// Learning without forgetting (Li &amp; Hoiem 2016): the model as it was after the previous experience is kept as a
/// frozen teacher (<see cref="ContinualState.Teacher"/>), and every batch adds
/// α · T² · KL(softmax(z_teacher / T) ‖ softmax(z_student / T)) to the loss, over the output units of the classes seen
/// in earlier experiences (all units when the state records none) and averaged over the batch. The logits compared
/// are the unmasked ones, so with a <see cref="TaskHeadMask"/> every earlier head is distilled, not only the
/// current task's. The teacher is a fresh model from the factory, loaded from the state's tensors.
/// </summary>
public sealed class LwfPlugin : IContinualPlugin
{
    private readonly ContinualState _state;
    private readonly Func<nn.Module<Tensor, Tensor>> _createModel;
    private nn.Module<Tensor, Tensor>? _teacher;
    private Tensor? _oldClasses;

    /// <summary>Creates the plug-in; <paramref name="createModel"/> builds a model of the trained architecture (its weights are replaced).</summary>
    public LwfPlugin(LwfOptions options, ContinualState state, Func<nn.Module<Tensor, Tensor>> createModel)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(createModel);
        options.Validate();
        Options = options;
        _state = state;
        _createModel = createModel;
    }

    /// <summary>The options.</summary>
    public LwfOptions Options { get; }

    /// <inheritdoc />
    public void BeforeTraining(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Release();
        if (_state.Teacher is not { } weights || Options.Alpha == 0)
        {
            return;
        }

        var teacher = _createModel();
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in teacher.named_parameters())
            {
                if (!weights.TryGetValue(name, out var value))
                {
                    throw new InvalidOperationException($"The LwF teacher has no tensor '{name}'.");
                }

                parameter.copy_(value);
                parameter.requires_grad = false;
            }
        }

        teacher.eval();
        _teacher = teacher;
        var device = context.Model.parameters().First().device;
        if (_state.SeenClasses.Count > 0)
        {
            using var host = torch.tensor(_state.SeenClasses.Select(c => (long)c).ToArray());
            _oldClasses = host.to(device).DetachFromDisposeScope();
        }
    }

    /// <inheritdoc />
    public void AfterForward(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_teacher is null)
        {
            return;
        }

        Tensor teacherLogits;
        using (torch.no_grad())
        {
            teacherLogits = _teacher.call(context.Inputs!);
        }

        var studentLogits = TaskHeadMask.RawLogits(context.Model, context.Output!);
        context.Loss = context.Loss!.add(Distillation(studentLogits, teacherLogits, _oldClasses), TorchScalars.One);
    }

    /// <summary>α · T² · mean over the batch of KL(softmax(teacher/T) ‖ softmax(student/T)) over <paramref name="classes"/> (all when null).</summary>
    public Tensor Distillation(Tensor student, Tensor teacher, Tensor? classes)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        if (classes is not null)
        {
            student = student.index_select(1, classes);
            teacher = teacher.index_select(1, classes);
        }

        using var temperature = Options.Temperature.ToScalar();
        using var weight = (Options.Alpha * Options.Temperature * Options.Temperature / student.shape[0]).ToScalar();
        var target = nn.functional.log_softmax(teacher.div(temperature), 1);
        var log = nn.functional.log_softmax(student.div(temperature), 1);
        var kl = target.exp().mul(target.sub(log)).sum();
        return kl.mul(weight);
    }

    /// <inheritdoc />
    public void AfterTraining(TrainingContext context) => Release();

    /// <inheritdoc />
    public void EndExperience(ExperienceEnd context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var snapshot = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in context.Model.named_parameters())
            {
                snapshot[name] = parameter.detach().clone().DetachFromDisposeScope();
            }
        }

        _state.SetTeacher(snapshot);
    }

    private void Release()
    {
        _teacher?.Dispose();
        _teacher = null;
        _oldClasses?.Dispose();
        _oldClasses = null;
    }
}
