using Microsoft.Extensions.Options;

namespace Federated.Client.Hosting;

/// <summary>Runs <see cref="ClientOptions.GetErrors"/> when the options are first used (and on start).</summary>
internal sealed class ClientOptionsValidator : IValidateOptions<ClientOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.GetErrors();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
