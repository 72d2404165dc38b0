using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Weights;

/// <summary>
/// A model's floating-point state (parameters and float buffers, in state-dict order) viewed as one contiguous
/// float32 vector with a <see cref="WeightLayout"/>; integer buffers (e.g. batch-norm's
/// <c>num_batches_tracked</c>) are kept apart in <see cref="GetIntegerBuffers"/>. Bind after the model has been moved
/// to its device. On the CPU, flatten and load copy straight through each tensor's memory: no allocations.
/// </summary>
public sealed class ModelWeights
{
    private readonly Tensor[] _floatTensors;
    private readonly (string Name, Tensor Tensor)[] _integerTensors;

    /// <summary>Binds to <paramref name="module"/>'s current parameters and buffers.</summary>
    public ModelWeights(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        var parameterNames = module.named_parameters().Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        var floats = new List<(string, long[], WeightKind)>();
        var floatTensors = new List<Tensor>();
        var integers = new List<(string, Tensor)>();
        foreach (var (name, tensor) in module.state_dict())
        {
            if (tensor.dtype == ScalarType.Float32)
            {
                if (!tensor.is_contiguous())
                {
                    throw new InvalidOperationException($"Tensor '{name}' is not contiguous; weights must be contiguous to be flattened.");
                }

                floats.Add((name, tensor.shape, parameterNames.Contains(name) ? WeightKind.Parameter : WeightKind.Buffer));
                floatTensors.Add(tensor);
            }
            else if (tensor.dtype is ScalarType.Int64 or ScalarType.Int32)
            {
                integers.Add((name, tensor));
            }
            else
            {
                throw new NotSupportedException($"Tensor '{name}' has dtype {tensor.dtype}; weight vectors hold float32 tensors and int32/int64 buffers.");
            }
        }

        Layout = new WeightLayout(floats);
        _floatTensors = floatTensors.ToArray();
        _integerTensors = integers.ToArray();
        Device = _floatTensors.Length > 0 ? _floatTensors[0].device : torch.CPU;
        if (_floatTensors.Any(t => t.device_type != Device.type || t.device_index != Device.index))
        {
            throw new InvalidOperationException("All weights of a model must live on one device.");
        }
    }

    /// <summary>The vector layout.</summary>
    public WeightLayout Layout { get; }

    /// <summary>The device the model lives on.</summary>
    public Device Device { get; }

    /// <summary>Names of the integer buffers, in state-dict order.</summary>
    public IEnumerable<string> IntegerBufferNames => _integerTensors.Select(t => t.Name);

    /// <summary>Copies the weights into a new vector.</summary>
    public float[] Flatten()
    {
        var vector = GC.AllocateUninitializedArray<float>(checked((int)Layout.TotalLength));
        FlattenInto(vector);
        return vector;
    }

    /// <summary>Copies the weights into <paramref name="destination"/> (exactly <see cref="WeightLayout.TotalLength"/> long).</summary>
    public void FlattenInto(Span<float> destination)
    {
        CheckLength(destination.Length);
        if (Device.type == DeviceType.CPU)
        {
            var offset = 0;
            foreach (var tensor in _floatTensors)
            {
                var source = MemoryMarshal.Cast<byte, float>(tensor.bytes);
                source.CopyTo(destination.Slice(offset, source.Length));
                offset += source.Length;
            }

            return;
        }

        // GPU: one concatenation on the device, one transfer to the host.
        using var scope = torch.NewDisposeScope();
        using var flat = torch.cat(_floatTensors.Select(t => t.detach().reshape(-1)).ToList(), 0).cpu();
        MemoryMarshal.Cast<byte, float>(flat.bytes).CopyTo(destination);
    }

    /// <summary>Overwrites the model's weights with <paramref name="source"/>.</summary>
    public void Load(ReadOnlySpan<float> source)
    {
        CheckLength(source.Length);
        if (Device.type == DeviceType.CPU)
        {
            var offset = 0;
            foreach (var tensor in _floatTensors)
            {
                var target = MemoryMarshal.Cast<byte, float>(tensor.bytes);
                source.Slice(offset, target.Length).CopyTo(target);
                offset += target.Length;
            }

            return;
        }

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var host = torch.empty(Layout.TotalLength, ScalarType.Float32);
        source.CopyTo(MemoryMarshal.Cast<byte, float>(host.bytes));
        var onDevice = host.to(Device);
        for (var i = 0; i < _floatTensors.Length; i++)
        {
            var entry = Layout.Entries[i];
            _floatTensors[i].copy_(onDevice.narrow(0, entry.Offset, entry.Length).view(_floatTensors[i].shape));
        }
    }

    /// <summary>Reads the integer buffers (name → flattened values).</summary>
    public IReadOnlyDictionary<string, long[]> GetIntegerBuffers()
    {
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, tensor) in _integerTensors)
        {
            using var cpu = tensor.to(ScalarType.Int64).cpu();
            result[name] = cpu.data<long>().ToArray();
        }

        return result;
    }

    /// <summary>Sets integer buffers; names not given keep their values, unknown names are an error.</summary>
    public void SetIntegerBuffers(IReadOnlyDictionary<string, long[]> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (var (name, data) in values)
        {
            var match = Array.FindIndex(_integerTensors, t => t.Name == name);
            if (match < 0)
            {
                throw new KeyNotFoundException($"The model has no integer buffer '{name}'.");
            }

            var tensor = _integerTensors[match].Tensor;
            if (data.Length != tensor.numel())
            {
                throw new ArgumentException($"Integer buffer '{name}' has {tensor.numel()} elements, not {data.Length}.", nameof(values));
            }

            using var noGrad = torch.no_grad();
            using var host = torch.tensor(data, tensor.shape).to(tensor.dtype).to(tensor.device);
            tensor.copy_(host);
        }
    }

    private void CheckLength(int length)
    {
        if (length != Layout.TotalLength)
        {
            throw new ArgumentException($"A weight vector for this model has {Layout.TotalLength} floats, not {length}.");
        }
    }
}
