using Federated.Learning.Data;
using Federated.Learning.Training;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// A training plug-in with continual state. Besides the loop's hooks it is told when an experience ends — after all
/// the training on it, which for a federated agent spans many rounds — and consolidates then (Avalanche's
/// <c>after_training_exp</c>): EWC estimates the Fisher diagonal, replay stores examples, LwF keeps the model as
/// its next teacher. Everything it keeps lives in the <see cref="ContinualState"/> it was built with.
/// </summary>
public interface IContinualPlugin : ITrainingPlugin
{
    /// <summary>Consolidates the experience that just ended.</summary>
    void EndExperience(ExperienceEnd context);
}

/// <summary>What <see cref="IContinualPlugin.EndExperience"/> gets.</summary>
/// <param name="Model">The model after training on the experience.</param>
/// <param name="Data">The experience's training data (without replayed examples).</param>
/// <param name="Experience">The experience's index, from 0 (<see cref="ContinualState.Experience"/> before it is advanced).</param>
public sealed record ExperienceEnd(nn.Module<Tensor, Tensor> Model, TensorDataset Data, int Experience);
