namespace Federated.Learning.Data;

/// <summary>
/// Learnable synthetic image data: each class has a fixed random prototype and samples are the prototype plus
/// Gaussian noise, clipped to [0, 1]. The prototypes depend only on the shape and the class count — they *are* the
/// synthetic data set — while the seed picks the samples, so a coordinator's held-out samples and its agents'
/// training samples come from the same task. Used by tests, smoke scenarios, and layouts whose real data sets (CIFAR,
/// EMNIST) are not installed here.
/// </summary>
public static class SyntheticImages
{
    /// <summary>Makes <paramref name="count"/> samples of shape <paramref name="sampleShape"/>.</summary>
    public static InMemorySource Create(int count, IReadOnlyList<int> sampleShape, int numClasses, int seed, float noise = 0.3f)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var size = sampleShape.Aggregate(1, (a, b) => checked(a * b));
        var prototypeRandom = new Random(unchecked((7919 * numClasses) + (31 * size)));
        var prototypes = new float[numClasses * size];
        for (var i = 0; i < prototypes.Length; i++)
        {
            prototypes[i] = prototypeRandom.NextSingle();
        }

        var random = new Random(seed);

        var features = new float[checked(count * size)];
        var labels = new int[count];
        for (var n = 0; n < count; n++)
        {
            var label = n % numClasses;
            labels[n] = label;
            var proto = prototypes.AsSpan(label * size, size);
            var sample = features.AsSpan(n * size, size);
            for (var i = 0; i < size; i++)
            {
                // Box–Muller: one Gaussian per pair of uniforms is plenty here.
                var g = MathF.Sqrt(-2f * MathF.Log(1f - random.NextSingle())) * MathF.Cos(2f * MathF.PI * random.NextSingle());
                sample[i] = Math.Clamp(proto[i] + noise * g, 0f, 1f);
            }
        }

        // Shuffle so that consecutive samples do not cycle through the classes.
        var order = Enumerable.Range(0, count).ToArray();
        random.Shuffle(order);
        var shuffledFeatures = new float[features.Length];
        var shuffledLabels = new int[count];
        for (var n = 0; n < count; n++)
        {
            features.AsSpan(order[n] * size, size).CopyTo(shuffledFeatures.AsSpan(n * size, size));
            shuffledLabels[n] = labels[order[n]];
        }

        return new InMemorySource($"synthetic-{string.Join('x', sampleShape)}", shuffledFeatures, shuffledLabels, sampleShape, numClasses);
    }
}
