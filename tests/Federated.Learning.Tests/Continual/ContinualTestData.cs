using Federated.Learning.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Tests.Continual;

internal static class ContinualTestData
{
    /// <summary>Same shape and exactly the same values.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Small learnable 1×4×4 images of <paramref name="classes"/> classes.</summary>
    public static TensorDataset Images(int count, int classes = 4, int seed = 3) =>
        TensorDataset.Materialize(SyntheticImages.Create(count, [1, 4, 4], classes, seed), Normalization.None, torch.CPU);

    /// <summary>Samples whose label is <c>labels[i]</c> and whose features are all <c>i</c>.</summary>
    public static TensorDataset Labelled(int[] labels, int classes)
    {
        var features = new float[labels.Length * 4];
        for (var i = 0; i < labels.Length; i++)
        {
            features.AsSpan(i * 4, 4).Fill(i);
        }

        return TensorDataset.Materialize(new InMemorySource("labelled", features, labels, [1, 2, 2], classes), Normalization.None, torch.CPU);
    }
}

/// <summary>Relabelling helpers.</summary>
internal static class TensorDatasetRelabel
{
    /// <summary>The same images with every label moved to the next class (a conflicting second task); disposes <paramref name="data"/>.</summary>
    public static TensorDataset Shift(TensorDataset data)
    {
        using (data)
        {
            var labels = data.Labels.ToArray().Select(l => (l + 1) % data.NumClasses).ToArray();
            using var scope = torch.NewDisposeScope();
            return TensorDataset.FromTensors("shifted", data.Features.clone().MoveToOuterDisposeScope(), torch.tensor(labels.Select(l => (long)l).ToArray()).MoveToOuterDisposeScope(), data.NumClasses);
        }
    }
}
