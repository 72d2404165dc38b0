using TorchSharp;

namespace Federated.Learning.Runtime;

/// <summary>
/// Scalars that live for the whole process. TorchSharp's one-argument <c>add_(Tensor)</c> (and <c>a + b</c>) pass an
/// implicit <c>Scalar</c> for alpha that nothing keeps alive: the GC may finalize it during the native call and its
/// memory may be reused by a scalar another thread creates. Hosting many agents in one process, 1 start in 2,000
/// failed with libtorch's "for integral input tensors, argument alpha must not be a floating point number". Our
/// code passes alpha explicitly from here instead; a static root is never finalized, and libtorch only reads it.
/// </summary>
public static class TorchScalars
{
    /// <summary>The integer 1 (valid as alpha for integral and floating tensors alike).</summary>
    public static Scalar One { get; } = 1L.ToScalar();
}
