using Federated.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// Experience replay: in <see cref="ITrainingPlugin.BeforeBatch"/> it draws a minibatch from the buffer in
/// <see cref="ContinualState.Replay"/> and concatenates it to the batch (so a batch of 128 becomes 128 new + 128
/// replayed examples, and both halves weigh alike in the mean loss); at the end of an experience it offers the
/// experience's examples to the buffer, whose policy and budget decide what stays.
/// </summary>
public sealed class ReplayPlugin : IContinualPlugin, IDisposable
{
    private readonly ContinualState _state;
    private Generator? _generator;

    /// <summary>Creates the plug-in, and an empty buffer in <paramref name="state"/> unless it holds one of the same policy and budget.</summary>
    public ReplayPlugin(ReplayOptions options, ContinualState state)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(state);
        options.Validate();
        Options = options;
        _state = state;
        if (state.Replay is { } existing)
        {
            if (existing.Policy != options.Policy || existing.Budget != options.Budget)
            {
                throw new ArgumentException($"The saved replay buffer is {existing.Policy} with a budget of {existing.Budget}; the options ask for {options.Policy} with {options.Budget}.", nameof(options));
            }
        }
        else
        {
            state.Replay = ReplayBuffer.Create(options);
        }
    }

    /// <summary>The options.</summary>
    public ReplayOptions Options { get; }

    /// <inheritdoc />
    public void BeforeTraining(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _generator?.Dispose();
        _generator = new Generator(unchecked((ulong)(Options.Seed * 1_000_003 + _state.Experience * 7_919L + context.Options.Seed)));
    }

    /// <inheritdoc />
    public void BeforeBatch(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var buffer = _state.Replay;
        if (buffer is null || buffer.Count == 0 || _generator is null)
        {
            return;
        }

        var count = Options.BatchSize > 0 ? Options.BatchSize : (int)context.Inputs!.shape[0];
        var (inputs, targets) = buffer.Sample(count, _generator);
        context.Inputs = torch.cat([context.Inputs!, inputs.to(context.Inputs!.device)], 0);
        context.Targets = torch.cat([context.Targets!, targets.to(context.Targets!.device)], 0);
    }

    /// <inheritdoc />
    public void AfterTraining(TrainingContext context)
    {
        _generator?.Dispose();
        _generator = null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _generator?.Dispose();
        _generator = null;
    }

    /// <inheritdoc />
    public void EndExperience(ExperienceEnd context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _state.Replay!.Add(context.Data, context.Experience);
    }
}
