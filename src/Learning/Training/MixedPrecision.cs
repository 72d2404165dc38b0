using Federated.Learning.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Federated.Learning.Training;

/// <summary>
/// Mixed-precision training done by hand (TorchSharp has neither autocast nor a gradient scaler): the caller's model
/// keeps the float32 master weights the optimiser owns and the plug-ins see; a working copy in bfloat16 or float16 runs
/// the forward and backward passes. Each step the working gradients are added to the master gradients (float32, where
/// plug-in penalties such as EWC's have already landed), unscaled when there is a loss scale, checked for overflow
/// (float16), and after the optimiser step the master weights are copied back into the working copy. Normalisation
/// statistics (buffers) the working copy updates are copied back to the master model after every batch.
/// </summary>
internal sealed class MixedPrecision : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _working;
    private readonly (Parameter Master, Parameter Working)[] _parameters;
    private readonly (Tensor Master, Tensor Working)[] _buffers;

    private MixedPrecision(TrainingPrecision precision, nn.Module<Tensor, Tensor> working, (Parameter, Parameter)[] parameters, (Tensor, Tensor)[] buffers, DynamicLossScaler? scaler)
    {
        Precision = precision;
        DType = precision.ScalarType();
        _working = working;
        _parameters = parameters;
        _buffers = buffers;
        Scaler = scaler;
    }

    /// <summary>The working precision.</summary>
    public TrainingPrecision Precision { get; }

    /// <summary>The working element type.</summary>
    public ScalarType DType { get; }

    /// <summary>The loss scaler (float16 only).</summary>
    public DynamicLossScaler? Scaler { get; }

    /// <summary>
    /// Builds the working copy of <paramref name="master"/> from <paramref name="createModel"/> (a model of the same
    /// architecture; its weights are replaced), casts it to the working type and materialises the master gradients.
    /// </summary>
    public static MixedPrecision Create(nn.Module<Tensor, Tensor> master, Func<nn.Module<Tensor, Tensor>> createModel, TrainingOptions options)
    {
        var precision = options.Precision;
        var dtype = precision.ScalarType();
        var masterParameters = master.named_parameters().ToArray();
        if (masterParameters.Any(p => p.parameter.dtype != ScalarType.Float32))
        {
            throw new ArgumentException($"Mixed-precision training needs a float32 model (its master weights); '{masterParameters.First(p => p.parameter.dtype != ScalarType.Float32).name}' is {masterParameters.First(p => p.parameter.dtype != ScalarType.Float32).parameter.dtype}.", nameof(master));
        }

        var device = masterParameters.Length > 0 ? masterParameters[0].parameter.device : torch.CPU;
        var working = createModel();
        try
        {
            working.to(device);
            working.to(dtype);
            var workingParameters = working.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            var pairs = new (Parameter, Parameter)[masterParameters.Length];
            for (var i = 0; i < masterParameters.Length; i++)
            {
                var (name, parameter) = masterParameters[i];
                if (!workingParameters.TryGetValue(name, out var copy) || !copy.shape.SequenceEqual(parameter.shape))
                {
                    throw new ArgumentException($"The working model the factory built does not match the trained one at parameter '{name}'.", nameof(createModel));
                }

                pairs[i] = (parameter, copy);
            }

            if (workingParameters.Count != masterParameters.Length)
            {
                throw new ArgumentException($"The working model has {workingParameters.Count} parameters, the trained one {masterParameters.Length}.", nameof(createModel));
            }

            var workingBuffers = working.named_buffers().ToDictionary(b => b.name, b => b.buffer, StringComparer.Ordinal);
            var buffers = master.named_buffers()
                .Select(b => workingBuffers.TryGetValue(b.name, out var copy)
                    ? (b.buffer, copy)
                    : throw new ArgumentException($"The working model has no buffer '{b.name}'.", nameof(createModel)))
                .ToArray();
            var scaler = precision == TrainingPrecision.Fp16 ? new DynamicLossScaler(options.InitialLossScale, options.LossScaleGrowthInterval) : null;
            var mixed = new MixedPrecision(precision, working, pairs, buffers, scaler);
            mixed.CopyMasterToWorking(includeBuffers: true);
            mixed.MaterialiseMasterGradients();
            working.train(master.training);
            return mixed;
        }
        catch
        {
            working.Dispose();
            throw;
        }
    }

    /// <summary>The forward pass on the working copy, inputs cast to the working type; the logits come back as float32.</summary>
    public Tensor Forward(Tensor inputs)
    {
        var cast = inputs.is_floating_point() && inputs.dtype != DType ? inputs.to(DType) : inputs;
        return _working.call(cast).to(ScalarType.Float32);
    }

    /// <summary>Clears the working copy's gradients.</summary>
    public void ZeroWorkingGradients()
    {
        foreach (var (_, working) in _parameters)
        {
            using var grad = working.grad;
            grad?.zero_();
        }
    }

    /// <summary>Back-propagates <paramref name="loss"/> (float32), multiplied by the loss scale when there is one.</summary>
    public void Backward(Tensor loss)
    {
        if (Scaler is null)
        {
            loss.backward();
            return;
        }

        using var scale = Scaler.Scale.ToScalar();
        loss.mul(scale).backward();
    }

    /// <summary>
    /// Adds the working gradients to the master gradients, divides them by the loss scale and, with a scaler, returns
    /// whether they are all finite (always true without one).
    /// </summary>
    public bool CollectGradients()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var grads = new List<Tensor>(_parameters.Length);
        foreach (var (master, working) in _parameters)
        {
            var masterGrad = master.grad;
            if (masterGrad is null)
            {
                continue;
            }

            using var workingGrad = working.grad;
            if (workingGrad is not null)
            {
                masterGrad.add_(workingGrad, TorchScalars.One);
            }

            grads.Add(masterGrad);
        }

        if (Scaler is null || grads.Count == 0)
        {
            return true;
        }

        using (var inverse = (1.0 / Scaler.Scale).ToScalar())
        {
            foreach (var grad in grads)
            {
                grad.mul_(inverse);
            }
        }

        return torch.stack(grads.Select(g => g.isfinite().all()).ToList()).all().item<bool>();
    }

    /// <summary>Copies the master weights (after a step) into the working copy.</summary>
    public void AfterStep() => CopyMasterToWorking(includeBuffers: false);

    /// <summary>Copies the working copy's buffers (normalisation statistics) back to the master model.</summary>
    public void CopyBuffersToMaster()
    {
        using var noGrad = torch.no_grad();
        foreach (var (master, working) in _buffers)
        {
            master.copy_(working);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _working.Dispose();

    private void CopyMasterToWorking(bool includeBuffers)
    {
        using var noGrad = torch.no_grad();
        foreach (var (master, working) in _parameters)
        {
            working.copy_(master);
        }

        if (includeBuffers)
        {
            foreach (var (master, working) in _buffers)
            {
                working.copy_(master);
            }
        }
    }

    // TorchSharp cannot assign a gradient, so the master gradients are created the way autograd creates them: one
    // backward pass of Σ 0·sum(θ) leaves a zero gradient on every trainable master parameter.
    private void MaterialiseMasterGradients()
    {
        using var scope = torch.NewDisposeScope();
        using var zero = 0.0.ToScalar();
        Tensor? total = null;
        foreach (var (master, _) in _parameters)
        {
            if (!master.requires_grad)
            {
                continue;
            }

            var part = master.sum().mul(zero);
            total = total is null ? part : total.add(part, TorchScalars.One);
        }

        total?.backward();
    }
}
