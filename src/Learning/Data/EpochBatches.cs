using TorchSharp;
using static TorchSharp.torch;

namespace Federated.Learning.Data;

/// <summary>
/// The mini-batches of one pass over a <see cref="TensorDataset"/>. Call <see cref="Get"/> inside the caller's
/// per-batch dispose scope: the batch tensors then die with that scope. Unshuffled batches are views
/// (<c>narrow</c>); shuffled ones are one <c>index_select</c> on the device.
/// </summary>
public sealed class EpochBatches : IDisposable
{
    private readonly TensorDataset _data;
    private readonly Tensor? _order;

    /// <summary>Plans one epoch. With a generator the order is a fresh permutation drawn from it.</summary>
    public EpochBatches(TensorDataset data, int batchSize, Generator? shuffle, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _data = data;
        BatchSize = batchSize;
        Count = dropLast ? data.Count / batchSize : (data.Count + batchSize - 1) / batchSize;
        if (shuffle is not null)
        {
            using var cpuOrder = torch.randperm(data.Count, generator: shuffle, dtype: ScalarType.Int64);
            _order = cpuOrder.to(data.Device).DetachFromDisposeScope();
        }
    }

    /// <summary>Number of batches in the epoch.</summary>
    public int Count { get; }

    /// <summary>Samples per full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Batch <paramref name="index"/>: inputs and int64 targets.</summary>
    public (Tensor Inputs, Tensor Targets) Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        long start = (long)index * BatchSize;
        var length = Math.Min(BatchSize, _data.Count - start);
        if (_order is null)
        {
            return (_data.Features.narrow(0, start, length), _data.LabelTensor.narrow(0, start, length));
        }

        var picked = _order.narrow(0, start, length);
        return (_data.Features.index_select(0, picked), _data.LabelTensor.index_select(0, picked));
    }

    /// <inheritdoc />
    public void Dispose() => _order?.Dispose();
}
