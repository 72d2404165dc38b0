using System.Numerics.Tensors;

namespace Federated.Learning.Weights;

/// <summary>Vectorised arithmetic on flat weight vectors, writing into caller-owned buffers (no allocations).</summary>
public static class WeightVectors
{
    /// <summary><paramref name="destination"/> = <paramref name="after"/> − <paramref name="before"/> (a model delta).</summary>
    public static void Delta(ReadOnlySpan<float> after, ReadOnlySpan<float> before, Span<float> destination)
    {
        CheckLengths(after.Length, before.Length, destination.Length);
        TensorPrimitives.Subtract(after, before, destination);
    }

    /// <summary><paramref name="destination"/> = <paramref name="baseline"/> + <paramref name="delta"/> (applies a delta).</summary>
    public static void Apply(ReadOnlySpan<float> baseline, ReadOnlySpan<float> delta, Span<float> destination)
    {
        CheckLengths(baseline.Length, delta.Length, destination.Length);
        TensorPrimitives.Add(baseline, delta, destination);
    }

    /// <summary><paramref name="accumulator"/> += <paramref name="scale"/> × <paramref name="vector"/>.</summary>
    public static void AddScaled(Span<float> accumulator, ReadOnlySpan<float> vector, float scale)
    {
        CheckLengths(accumulator.Length, vector.Length, accumulator.Length);
        TensorPrimitives.MultiplyAdd(vector, scale, accumulator, accumulator);
    }

    /// <summary>The L2 norm, accumulated in double precision.</summary>
    public static double L2Norm(ReadOnlySpan<float> vector)
    {
        double sum = 0;
        const int Block = 4096;
        for (var i = 0; i < vector.Length; i += Block)
        {
            var slice = vector.Slice(i, Math.Min(Block, vector.Length - i));
            sum += TensorPrimitives.Dot(slice, slice);
        }

        return Math.Sqrt(sum);
    }

    private static void CheckLengths(int a, int b, int destination)
    {
        if (a != b || a != destination)
        {
            throw new ArgumentException($"Weight vectors must have equal lengths (got {a}, {b} and {destination}).");
        }
    }
}
