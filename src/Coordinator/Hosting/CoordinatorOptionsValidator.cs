using Federated.Learning.Models;
using Microsoft.Extensions.Options;

namespace Federated.Coordinator.Hosting;

/// <summary>Cross-field rules the data annotations cannot express.</summary>
internal sealed class CoordinatorOptionsValidator : IValidateOptions<CoordinatorOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.MinFit > options.MinAvailable)
        {
            errors.Add($"Coordinator:MinFit ({options.MinFit}) cannot exceed Coordinator:MinAvailable ({options.MinAvailable}).");
        }

        if (options.ResolvedInputShape is not { Length: 3 } || options.ResolvedInputShape.Any(d => d < 1))
        {
            errors.Add("Coordinator:InputShape must be three positive numbers: channels, height, width.");
        }

        if (!ModelFactory.Names.Contains(options.Model.Trim().ToLowerInvariant()) && options.Model is not ("2nn" or "fashion-cnn" or "small-resnet"))
        {
            errors.Add($"Coordinator:Model '{options.Model}' is unknown; use one of {string.Join(", ", ModelFactory.Names)}.");
        }

        if (options.Training.Optimizer.Trim().ToLowerInvariant() is not ("sgd" or "adam" or "adamw"))
        {
            errors.Add($"Coordinator:Training:Optimizer must be sgd, adam or adamw, not '{options.Training.Optimizer}'.");
        }

        if (options.Store is not ("sqlite" or "file"))
        {
            errors.Add($"Coordinator:Store must be sqlite or file, not '{options.Store}'.");
        }

        if (options.Prometheus.Enabled && !options.Prometheus.Path.StartsWith('/'))
        {
            errors.Add($"Coordinator:Prometheus:Path must start with '/', not '{options.Prometheus.Path}'.");
        }

        if (options.Prometheus.Url.Length > 0
            && (!Uri.TryCreate(options.Prometheus.Url, UriKind.Absolute, out var metricsUrl) || metricsUrl.Scheme != "http" || metricsUrl.Port <= 0 || metricsUrl.AbsolutePath != "/"))
        {
            errors.Add($"Coordinator:Prometheus:Url must be an http address with a port and no path, e.g. http://0.0.0.0:9464, not '{options.Prometheus.Url}'.");
        }

        if (options.Admin.Token.Length is > 0 and < 16)
        {
            errors.Add("Coordinator:Admin:Token must be at least 16 characters (or empty: loopback callers only).");
        }

        if (options.Runs.MaxActive is < 1 or > 64)
        {
            errors.Add($"Coordinator:Runs:MaxActive must be between 1 and 64, not {options.Runs.MaxActive}.");
        }

        if (options.Population is not ("connected" or "enrolled"))
        {
            errors.Add($"Coordinator:Population must be connected or enrolled, not '{options.Population}'.");
        }

        if (options.RosterFile.Length > 0 && !File.Exists(options.RosterFile))
        {
            errors.Add($"Coordinator:RosterFile '{options.RosterFile}' does not exist.");
        }

        if (options.Evaluation.Source is not ("idx" or "synthetic" or "none"))
        {
            errors.Add($"Coordinator:Evaluation:Source must be idx, synthetic or none, not '{options.Evaluation.Source}'.");
        }

        if (options.Evaluation.Normalization is not ("fashion-mnist" or "mnist" or "none"))
        {
            errors.Add($"Coordinator:Evaluation:Normalization must be fashion-mnist, mnist or none, not '{options.Evaluation.Normalization}'.");
        }

        if (options.ChunkBytes + 64 * 1024 > options.MaxReceiveMessageBytes)
        {
            errors.Add($"Coordinator:ChunkBytes ({options.ChunkBytes}) plus framing must fit Coordinator:MaxReceiveMessageBytes ({options.MaxReceiveMessageBytes}).");
        }

        if (options.AgentTimeoutSeconds <= options.HeartbeatSeconds)
        {
            errors.Add("Coordinator:AgentTimeoutSeconds must be longer than Coordinator:HeartbeatSeconds.");
        }

        errors.AddRange(options.Compression.Validate(name => $"{CoordinatorOptions.Section}:Compression:{name}"));

        try
        {
            Learning.Strategies.StrategyFactory.Create(options.Strategy, options.StrategyOptions);
        }
        catch (ArgumentException e)
        {
            errors.Add($"Coordinator:Strategy: {e.Message}");
        }

        Privacy.CoordinatorPrivacy.Validate(options, errors);
        if (options.Continual is null)
        {
            errors.Add("Coordinator:Continual must be a section.");
        }
        else
        {
            if (options.Continual.ConsolidateFisher && options.Privacy is { Enabled: true })
            {
                errors.Add("Coordinator:Continual:ConsolidateFisher cannot be combined with Coordinator:Privacy:Enabled: the agents' Fisher diagonals would leave them outside the privacy guarantee.");
            }

            if (options.Continual.Stream != "none" && !Learning.Continual.ContinualStreams.Kinds.Contains(options.Continual.Stream))
            {
                errors.Add($"Coordinator:Continual:Stream must be none, {string.Join(", ", Learning.Continual.ContinualStreams.Kinds)}, not '{options.Continual.Stream}'.");
            }

            if (options.Continual.Experiences is < 2 or > 1000)
            {
                errors.Add($"Coordinator:Continual:Experiences must be between 2 and 1000, not {options.Continual.Experiences}.");
            }
        }
        AsynchronousModeRules.Validate(options, errors);
        errors.AddRange(options.SecureAggregation?.Validate(options) ?? ["Coordinator:SecureAggregation must be a section."]);
        errors.AddRange(options.Security?.Validate() ?? ["Coordinator:Security must be a section."]);
        errors.AddRange(options.Dashboard?.Validate(options.Security?.PlaintextPolicy ?? PlaintextPolicy.Refuse, options.Prometheus?.Path ?? "") ?? ["Coordinator:Dashboard must be a section."]);

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
