using System.Buffers;
using System.Buffers.Binary;

namespace Federated.Learning.Compression;

/// <summary>What a <see cref="DeltaDecoder"/> does with the values it decodes.</summary>
internal enum DecodeMode
{
    /// <summary>Checks every byte; writes nothing.</summary>
    Validate,

    /// <summary>Overwrites the target (sparse payloads zero it first).</summary>
    Write,

    /// <summary>Adds weight × values to the target.</summary>
    Add,
}

/// <summary>
/// The one decoder behind every entry point: a state machine fed bytes in pieces of any size (a whole payload, or
/// chunks as they arrive). It walks header → parameters → [sparse: index section → value header → value
/// parameters] → units, checking each part before it acts on it, and buffers only a part that straddles two pieces.
/// Every size it waits for is checked against the bytes the payload can still hold and against the destination, so
/// it never allocates or loops from an untrusted count; everything it rejects is a <see cref="CodecException"/>.
/// </summary>
internal sealed class DeltaDecoder : IDisposable
{
    private readonly int _count;
    private readonly long _total;
    private readonly DecodeMode _mode;
    private readonly float _weight;
    private readonly CodecId? _expected;
    private readonly int _unitLimit;

    private Stage _stage = Stage.Header;
    private int _need = CodecHeader.Size;
    private string _what = "the codec header";
    private long _consumed;
    private long _received;
    private byte[]? _pending;
    private int _pendingFilled;

    private CodecId _codec;
    private int _elements;
    private DenseCodec? _format;
    private int _unitElements;
    private int _unitCount;
    private int _unit;

    private int _k;
    private SparseIndexFormat _indexFormat;
    private SparseIndexReader? _indices;
    private float[]? _values;
    private int[]? _positions;

    /// <param name="count">The destination's length: the element count the payload must declare.</param>
    /// <param name="total">The payload's length in bytes (declared, for a stream).</param>
    /// <param name="mode">What to do with the values.</param>
    /// <param name="weight">The factor for <see cref="DecodeMode.Add"/>.</param>
    /// <param name="expected">The codec the payload must be of, or null for any.</param>
    /// <param name="unitLimit">Stop after applying this many units (to take a partial contribution back out).</param>
    public DeltaDecoder(int count, long total, DecodeMode mode, float weight, CodecId? expected, int unitLimit = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        _count = count;
        _total = total;
        _mode = mode;
        _weight = weight;
        _expected = expected;
        _unitLimit = unitLimit;
        Require(CodecHeader.Size, _what);
    }

    private enum Stage
    {
        Header,
        Parameters,
        IndexInfo,
        IndexSection,
        ValueHeader,
        ValueParameters,
        Units,
        Done,
    }

    /// <summary>Units whose values went into the target so far.</summary>
    public int AppliedUnits { get; private set; }

    /// <summary>Bytes fed so far.</summary>
    public long Received => _received;

    /// <summary>True once the whole payload has been read.</summary>
    public bool IsDone => _stage == Stage.Done;

    private bool LimitReached => _mode != DecodeMode.Validate && AppliedUnits >= _unitLimit;

    /// <summary>Throws unless <paramref name="weight"/> is finite.</summary>
    public static float CheckWeight(float weight) =>
        float.IsFinite(weight) ? weight : throw new ArgumentOutOfRangeException(nameof(weight), weight, "The weight must be finite.");

    /// <summary>Validates the whole payload, then applies it: the target is untouched when it is rejected.</summary>
    public static void Run(ReadOnlySpan<byte> encoded, Span<float> target, DecodeMode mode, float weight, CodecId? expected)
    {
        using (var check = new DeltaDecoder(target.Length, encoded.Length, DecodeMode.Validate, 0, expected))
        {
            check.Feed(encoded, target);
            check.Complete(target);
        }

        using var apply = new DeltaDecoder(target.Length, encoded.Length, mode, weight, expected);
        apply.Feed(encoded, target);
        apply.Complete(target);
    }

    /// <summary>As <see cref="Run(ReadOnlySpan{byte}, Span{float}, DecodeMode, float, CodecId?)"/>, over the segments of a sequence.</summary>
    public static void Run(in ReadOnlySequence<byte> encoded, Span<float> target, DecodeMode mode, float weight)
    {
        using (var check = new DeltaDecoder(target.Length, encoded.Length, DecodeMode.Validate, 0, null))
        {
            foreach (var segment in encoded)
            {
                check.Feed(segment.Span, target);
            }

            check.Complete(target);
        }

        using var apply = new DeltaDecoder(target.Length, encoded.Length, mode, weight, null);
        foreach (var segment in encoded)
        {
            apply.Feed(segment.Span, target);
        }

        apply.Complete(target);
    }

    /// <summary>Consumes <paramref name="data"/>, acting on every part that is complete.</summary>
    public void Feed(ReadOnlySpan<byte> data, Span<float> target)
    {
        if (data.Length > _total - _received)
        {
            throw new CodecException($"The payload is longer than the {_total} bytes it was declared to have.");
        }

        _received += data.Length;
        while (true)
        {
            AdvanceEmptyParts(target);
            if (data.IsEmpty || LimitReached)
            {
                return;
            }

            if (_stage == Stage.Done)
            {
                throw new CodecException($"The payload has {_total - _consumed} byte(s) after its end at byte {_consumed}.");
            }

            ReadOnlySpan<byte> part;
            if (_pendingFilled == 0 && data.Length >= _need)
            {
                part = data[.._need];
                data = data[_need..];
            }
            else
            {
                if (_pending is null || _pending.Length < _need)
                {
                    var grown = ArrayPool<byte>.Shared.Rent(_need);
                    if (_pending is not null)
                    {
                        _pending.AsSpan(0, _pendingFilled).CopyTo(grown);
                        ArrayPool<byte>.Shared.Return(_pending);
                    }

                    _pending = grown;
                }

                var take = Math.Min(_need - _pendingFilled, data.Length);
                data[..take].CopyTo(_pending.AsSpan(_pendingFilled));
                _pendingFilled += take;
                data = data[take..];
                if (_pendingFilled < _need)
                {
                    return;
                }

                part = _pending.AsSpan(0, _need);
                _pendingFilled = 0;
            }

            _consumed += _need;
            Step(part, target);
        }
    }

    /// <summary>Throws unless the payload ended exactly where its structure says.</summary>
    public void Complete(Span<float> target)
    {
        AdvanceEmptyParts(target);
        if (_stage != Stage.Done)
        {
            throw new CodecException($"The payload is truncated: it ended after {_received} byte(s), inside {_what}.");
        }

        if (_received != _total)
        {
            throw new CodecException($"The payload has {_total - _consumed} byte(s) after its end at byte {_consumed}.");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_pending is not null)
        {
            ArrayPool<byte>.Shared.Return(_pending);
            _pending = null;
        }

        if (_values is not null)
        {
            ArrayPool<float>.Shared.Return(_values);
            _values = null;
        }

        if (_positions is not null)
        {
            ArrayPool<int>.Shared.Return(_positions);
            _positions = null;
        }

        _indices?.Dispose();
        _indices = null;
    }

    private void AdvanceEmptyParts(Span<float> target)
    {
        while (_need == 0 && _stage != Stage.Done && !LimitReached)
        {
            Step([], target);
        }
    }

    private void Require(long bytes, string what)
    {
        var left = _total - _consumed;
        if (bytes > left)
        {
            throw new CodecException($"The payload is truncated: {what} needs {bytes} byte(s) but only {left} of its {_total} remain.");
        }

        _need = (int)bytes;
        _what = what;
    }

    private void Step(ReadOnlySpan<byte> part, Span<float> target)
    {
        switch (_stage)
        {
            case Stage.Header:
            case Stage.ValueHeader:
                ReadHeader(part, outer: _stage == Stage.Header);
                break;
            case Stage.Parameters when _codec == CodecId.Sparse:
                ReadSparseParameters(part);
                break;
            case Stage.Parameters:
            case Stage.ValueParameters:
                _format = DenseCodec.FromWire(_codec, part);
                BeginUnits(target);
                break;
            case Stage.IndexInfo:
                ReadIndexInfo(part);
                break;
            case Stage.IndexSection:
                _indices = SparseIndexReader.FromSection(part, _indexFormat, _count, _k);
                _indices.Validate();
                BeginValues();
                break;
            case Stage.Units:
                ReadUnit(part, target);
                break;
            default:
                throw new InvalidOperationException($"The decoder has no step for stage {_stage}.");
        }
    }

    private void ReadHeader(ReadOnlySpan<byte> part, bool outer)
    {
        var header = CodecHeader.Read(part);
        if (outer && _expected is { } expected && header.Codec != expected)
        {
            throw new CodecException($"The payload was written by the {header.Codec} codec, not {expected}.");
        }

        if (!outer && header.Codec == CodecId.Sparse)
        {
            throw new CodecException("The values of a sparse payload must use a dense codec (f32, fp16, bf16, q or sign), not another sparse one.");
        }

        var expectedCount = outer ? _count : _k;
        if (header.ElementCount != expectedCount)
        {
            throw new CodecException(outer
                ? $"The payload holds {header.ElementCount} elements but the destination has {expectedCount}."
                : $"The sparse payload keeps {expectedCount} values but its value payload holds {header.ElementCount}.");
        }

        _codec = header.Codec;
        _elements = header.ElementCount;
        _stage = outer ? Stage.Parameters : Stage.ValueParameters;
        Require(DenseCodec.ParameterBytesOf(_codec), $"the {_codec} parameters");
    }

    private void ReadSparseParameters(ReadOnlySpan<byte> part)
    {
        var k = BinaryPrimitives.ReadUInt32LittleEndian(part);
        if (k > (uint)_count)
        {
            throw new CodecException($"The sparse payload keeps {k} of {_count} elements.");
        }

        _k = (int)k;
        _indexFormat = (SparseIndexFormat)part[4];
        switch (_indexFormat)
        {
            case SparseIndexFormat.Varint:
                _stage = Stage.IndexInfo;
                Require(sizeof(uint), "the index section's length");
                break;
            case SparseIndexFormat.Seeded:
                _stage = Stage.IndexInfo;
                Require(sizeof(ulong), "the index seed");
                break;
            case SparseIndexFormat.Bitmap:
                _stage = Stage.IndexSection;
                Require((_count + 7L) / 8, "the index bitmap");
                break;
            default:
                throw new CodecException($"Unknown sparse index format {part[4]} (this build reads 0 = varint, 1 = bitmap, 2 = seeded).");
        }
    }

    private void ReadIndexInfo(ReadOnlySpan<byte> part)
    {
        if (_indexFormat == SparseIndexFormat.Seeded)
        {
            _indices = SparseIndexReader.FromSeed(BinaryPrimitives.ReadUInt64LittleEndian(part), _count, _k);
            BeginValues();
            return;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(part);
        if (length < _k || length > 5L * _k)
        {
            throw new CodecException($"An index section of {length} byte(s) cannot hold {_k} varint indices (1 to 5 bytes each).");
        }

        _stage = Stage.IndexSection;
        Require(length, "the index section");
    }

    private void BeginValues()
    {
        _stage = Stage.ValueHeader;
        Require(CodecHeader.Size, "the value payload's header");
    }

    private void BeginUnits(Span<float> target)
    {
        _stage = Stage.Units;
        _unit = 0;
        _unitElements = _elements == 0 ? 1 : _format!.UnitElements(_elements);
        _unitCount = (int)((_elements + (long)_unitElements - 1) / _unitElements);
        if (_indices is not null && _mode != DecodeMode.Validate)
        {
            var buffer = Math.Max(1, Math.Min(_unitElements, _k));
            _values = ArrayPool<float>.Shared.Rent(buffer);
            _positions = ArrayPool<int>.Shared.Rent(buffer);
            if (_mode == DecodeMode.Write)
            {
                target.Clear();
            }
        }

        RequireUnit();
    }

    private void RequireUnit()
    {
        if (_unit == _unitCount)
        {
            _stage = Stage.Done;
            _need = 0;
            _what = "nothing (the payload is complete)";
            return;
        }

        Require(_format!.UnitBytes(UnitLength(_unit)), $"{_format.Name} unit {_unit} of {_unitCount}");
    }

    private int UnitLength(int unit) => Math.Min(_unitElements, _elements - (unit * _unitElements));

    private void ReadUnit(ReadOnlySpan<byte> part, Span<float> target)
    {
        var format = _format!;
        var length = UnitLength(_unit);
        var first = _unit * _unitElements;
        format.ValidateUnit(part, length, _unit, first);
        if (_mode != DecodeMode.Validate)
        {
            if (_indices is null)
            {
                var slice = target.Slice(first, length);
                if (_mode == DecodeMode.Write)
                {
                    format.DecodeUnit(part, slice);
                }
                else
                {
                    format.DecodeAddUnit(part, _weight, slice);
                }
            }
            else
            {
                Scatter(part, length, target);
            }

            AppliedUnits++;
        }

        _unit++;
        if (LimitReached)
        {
            // Undoing a partial contribution: the units past the limit were never applied, and may be the very ones
            // that were malformed or truncated, so they are not even framed.
            return;
        }

        RequireUnit();
    }

    private void Scatter(ReadOnlySpan<byte> part, int length, Span<float> target)
    {
        var values = _values.AsSpan(0, length);
        var positions = _positions.AsSpan(0, length);
        _format!.DecodeUnit(part, values);
        _indices!.Next(positions);
        if (_mode == DecodeMode.Write)
        {
            for (var i = 0; i < length; i++)
            {
                target[positions[i]] = values[i];
            }
        }
        else
        {
            var weight = _weight;
            for (var i = 0; i < length; i++)
            {
                target[positions[i]] += weight * values[i];
            }
        }
    }
}
