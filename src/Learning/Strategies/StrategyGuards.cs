using System.Globalization;

namespace Federated.Learning.Strategies;

/// <summary>Range checks and number formatting shared by the strategies.</summary>
internal static class StrategyGuards
{
    public static double Positive(double value, string name) =>
        value > 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and finite.");

    public static double NonNegative(double value, string name) =>
        value >= 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be non-negative and finite.");

    public static double UnitInterval(double value, string name) =>
        value is >= 0 and < 1 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1).");

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Throws unless every state tensor has the same length, non-zero, and finite values.</summary>
    public static void CheckState(string strategy, IReadOnlyDictionary<string, float[]> state, params string[] keys)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var key in state.Keys)
        {
            if (Array.IndexOf(keys, key) < 0)
            {
                throw new ArgumentException($"{strategy}: unknown state tensor '{key}' (expected {string.Join(", ", keys)}).", nameof(state));
            }
        }

        if (state.Count == 0)
        {
            return;
        }

        if (state.Count != keys.Length)
        {
            throw new ArgumentException($"{strategy}: the state needs all of {string.Join(", ", keys)} or none.", nameof(state));
        }

        var length = state[keys[0]].Length;
        foreach (var key in keys)
        {
            var vector = state[key];
            if (vector.Length != length || length == 0)
            {
                throw new ArgumentException($"{strategy}: state tensor '{key}' has {vector.Length} floats; expected {length} (non-zero, equal lengths).", nameof(state));
            }

            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(vector))
            {
                throw new ArgumentException($"{strategy}: state tensor '{key}' has non-finite values.", nameof(state));
            }
        }
    }

    /// <summary>Throws when stored state does not fit the model of a round.</summary>
    public static void CheckStateFits(string strategy, float[]? state, int modelLength)
    {
        if (state is not null && state.Length != modelLength)
        {
            throw new InvalidOperationException($"{strategy}: the saved state has {state.Length} floats but the global model has {modelLength}.");
        }
    }
}
