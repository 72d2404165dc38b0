using Federated.Learning.Runtime;
using Federated.Learning.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Continual;

/// <summary>
/// Elastic weight consolidation (Kirkpatrick et al. 2017): adds λ/2 · Σ_k Σ_i F_k,i (θ_i − θ*_k,i)² to the loss in
/// <see cref="ITrainingPlugin.AfterForward"/>, over the terms in <see cref="ContinualState.EwcTerms"/>. At the end of an
/// experience it estimates the Fisher diagonal on the experience's data (<see cref="FisherEstimator"/>) and either
/// keeps it as a new term next to the old ones (<see cref="EwcMode.Separate"/>) or folds it into the one running term,
/// F ← γ·F + F_new with the anchor moved to the current weights (<see cref="EwcMode.Online"/>, Schwarz et al. 2018).
/// </summary>
public sealed class EwcPlugin : IContinualPlugin
{
    private readonly ContinualState _state;
    private Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);

    /// <summary>Creates the plug-in; its terms live in <paramref name="state"/>.</summary>
    public EwcPlugin(EwcOptions options, ContinualState state)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(state);
        options.Validate();
        Options = options;
        _state = state;
    }

    /// <summary>The options.</summary>
    public EwcOptions Options { get; }

    /// <inheritdoc />
    public void BeforeTraining(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _parameters = context.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public void AfterForward(TrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_state.EwcTerms.Count == 0 || Options.Lambda == 0)
        {
            return;
        }

        using var halfLambda = (Options.Lambda / 2).ToScalar();
        context.Loss = context.Loss!.add(Penalty(_parameters, _state.EwcTerms).mul(halfLambda), TorchScalars.One);
    }

    /// <summary>Σ_k Σ_i F_k,i (θ_i − θ*_k,i)² (without λ/2), a scalar tensor in the caller's scope.</summary>
    public static Tensor Penalty(IReadOnlyDictionary<string, Parameter> parameters, IReadOnlyList<EwcTerm> terms)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(terms);
        Tensor? sum = null;
        foreach (var term in terms)
        {
            foreach (var (name, fisher) in term.Fisher)
            {
                if (!parameters.TryGetValue(name, out var parameter))
                {
                    throw new InvalidOperationException($"The EWC term of experience {term.Experience} names '{name}', which the model does not have.");
                }

                var part = parameter.sub(term.Anchor[name]).square().mul(fisher).sum();
                sum = sum is null ? part : sum.add_(part, TorchScalars.One);
            }
        }

        return sum ?? torch.zeros(1);
    }

    /// <inheritdoc />
    public void EndExperience(ExperienceEnd context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var fisher = FisherEstimator.Estimate(context.Model, context.Data, Options.FisherSamples, Options.Seed + context.Experience);
        var anchor = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in context.Model.named_parameters())
            {
                if (fisher.ContainsKey(name))
                {
                    anchor[name] = parameter.detach().clone().DetachFromDisposeScope();
                }
            }
        }

        var samples = Math.Min(Options.FisherSamples, context.Data.Count);
        if (Options.Mode == EwcMode.Online && _state.EwcTerms.Count > 1)
        {
            throw new InvalidOperationException("Online EWC keeps one term, but the state holds several (made with separate penalties).");
        }

        if (Options.Mode == EwcMode.Separate || _state.EwcTerms.Count == 0)
        {
            _state.AddEwcTerm(new EwcTerm(context.Experience, samples, fisher, anchor));
            return;
        }

        var previous = _state.EwcTerms[^1];
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        using (var gamma = Options.Gamma.ToScalar())
        {
            foreach (var (name, f) in fisher)
            {
                f.add_(previous.Fisher[name].mul(gamma), TorchScalars.One);
            }
        }

        _state.ReplaceEwcTerms([new EwcTerm(context.Experience, samples, fisher, anchor)]);
    }
}
