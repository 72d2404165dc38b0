namespace Federated.Learning.Models;

/// <summary>Input and output shape a model is built for.</summary>
/// <param name="Channels">Input channels (1 for grey-scale, 3 for colour).</param>
/// <param name="Height">Input height in pixels.</param>
/// <param name="Width">Input width in pixels.</param>
/// <param name="NumClasses">Number of output classes.</param>
public sealed record ModelShape(int Channels, int Height, int Width, int NumClasses)
{
    /// <summary>28×28 grey-scale, 10 classes (MNIST, Fashion-MNIST).</summary>
    public static ModelShape Mnist { get; } = new(1, 28, 28, 10);

    /// <summary>32×32 colour, 10 classes (the CIFAR-10 layout).</summary>
    public static ModelShape Cifar10 { get; } = new(3, 32, 32, 10);

    /// <summary>Number of input values per sample.</summary>
    public int InputSize => Channels * Height * Width;

    /// <summary>Builds the shape from a sample shape [C, H, W] (or [H, W]) and a class count.</summary>
    public static ModelShape FromSample(IReadOnlyList<long> sampleShape, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        return sampleShape.Count switch
        {
            3 => new ModelShape((int)sampleShape[0], (int)sampleShape[1], (int)sampleShape[2], numClasses),
            2 => new ModelShape(1, (int)sampleShape[0], (int)sampleShape[1], numClasses),
            _ => throw new ArgumentException($"Models take samples shaped [C, H, W]; got [{string.Join(", ", sampleShape)}]."),
        };
    }

    /// <summary>Throws unless every field is positive.</summary>
    public void Validate()
    {
        if (Channels < 1 || Height < 1 || Width < 1 || NumClasses < 2)
        {
            throw new ArgumentException($"Invalid model shape {this}: channels, height and width must be positive and there must be at least two classes.");
        }
    }
}
