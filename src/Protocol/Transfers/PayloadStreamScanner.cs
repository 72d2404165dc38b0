using Federated.Protocol.V1;

namespace Federated.Protocol.Transfers;

/// <summary>
/// Reads a serialised <see cref="Payload"/> as its bytes arrive, without buffering it, and hands the <c>data</c> bytes
/// of the tensors a selector asks for to a consumer, segment by segment (slices of the chunks it is fed, never
/// copies). This is what lets the coordinator decode an uploaded model delta while the upload is still streaming in.
/// </summary>
/// <remarks>
/// A tensor's data is offered only when its <c>name</c> and <c>encoding</c> came before its <c>data</c>, which is the
/// order every conforming writer uses (fields in field-number order); otherwise the data is skipped and the caller
/// falls back to decoding the assembled payload. Nothing in the input is trusted: a length that runs past its
/// enclosing message or past the declared payload size, an over-long varint, a group or an unknown wire type faults
/// the scanner with a <see cref="TransferException"/>. The scanner only frames bytes; the checksum of the whole payload
/// and the full parse (<see cref="PayloadCodec.Parse"/>) still decide whether the update is accepted.
/// </remarks>
public sealed class PayloadStreamScanner
{
    private const int MaxNameBytes = 1024;

    private readonly long _total;
    private readonly Func<string, TensorEncoding, long, Action<ReadOnlyMemory<byte>>?> _select;
    private State _state = State.TopTag;
    private long _position;
    private ulong _varint;
    private int _shift;
    private int _field;
    private long _left;
    private long _tensorEnd;
    private byte[]? _nameBytes;
    private int _nameFilled;
    private string? _name;
    private TensorEncoding _encoding;
    private Action<ReadOnlyMemory<byte>>? _consumer;
    private bool _faulted;

    /// <param name="totalBytes">The payload's declared size: the scanner refuses to read past it.</param>
    /// <param name="select">
    /// Called when a tensor's data begins, with its name, encoding and data length; returns the consumer of its bytes, or
    /// null to skip them. May throw to abort the scan.
    /// </param>
    public PayloadStreamScanner(long totalBytes, Func<string, TensorEncoding, long, Action<ReadOnlyMemory<byte>>?> select)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalBytes);
        ArgumentNullException.ThrowIfNull(select);
        _total = totalBytes;
        _select = select;
    }

    private enum State
    {
        TopTag,
        TopVarint,
        TopLength,
        TopSkip,
        TensorTag,
        TensorVarint,
        TensorLength,
        TensorSkip,
        TensorName,
        TensorData,
    }

    /// <summary>Bytes consumed so far.</summary>
    public long Position => _position;

    /// <summary>True when exactly the declared bytes were consumed and they end on a field boundary.</summary>
    public bool IsComplete => !_faulted && _state == State.TopTag && _shift == 0 && _position == _total;

    /// <summary>Consumes the next bytes of the payload.</summary>
    /// <exception cref="TransferException">The bytes do not frame a payload; the scanner is then faulted.</exception>
    public void Feed(ReadOnlyMemory<byte> chunk)
    {
        if (_faulted)
        {
            throw new InvalidOperationException("The payload scan already failed.");
        }

        try
        {
            Scan(chunk);
        }
        catch
        {
            // Malformed bytes, or a selector or consumer that failed: the scan cannot go on either way.
            _faulted = true;
            throw;
        }
    }

    private void Scan(ReadOnlyMemory<byte> chunk)
    {
        if (chunk.Length > _total - _position)
        {
            throw Malformed($"more bytes than the declared {_total}");
        }

        var span = chunk.Span;
        var i = 0;
        while (i < span.Length)
        {
            switch (_state)
            {
                case State.TopTag or State.TopVarint or State.TopLength or State.TensorTag or State.TensorVarint or State.TensorLength:
                    if (VarintByte(span[i++]))
                    {
                        var value = _varint;
                        _varint = 0;
                        _shift = 0;
                        OnVarint(value);
                    }

                    break;
                case State.TopSkip or State.TensorSkip:
                {
                    var take = (int)Math.Min(_left, span.Length - i);
                    i += take;
                    _position += take;
                    _left -= take;
                    if (_left == 0)
                    {
                        EndField();
                    }

                    break;
                }

                case State.TensorName:
                {
                    var take = Math.Min(_nameBytes!.Length - _nameFilled, span.Length - i);
                    span.Slice(i, take).CopyTo(_nameBytes.AsSpan(_nameFilled));
                    _nameFilled += take;
                    i += take;
                    _position += take;
                    if (_nameFilled == _nameBytes.Length)
                    {
                        _name = System.Text.Encoding.UTF8.GetString(_nameBytes);
                        _nameBytes = null;
                        EndField();
                    }

                    break;
                }

                case State.TensorData:
                {
                    var take = (int)Math.Min(_left, span.Length - i);
                    _consumer!(chunk.Slice(i, take));
                    i += take;
                    _position += take;
                    _left -= take;
                    if (_left == 0)
                    {
                        _consumer = null;
                        EndField();
                    }

                    break;
                }
            }
        }
    }

    private bool VarintByte(byte b)
    {
        if (_shift >= 64)
        {
            throw Malformed("a varint longer than 10 bytes");
        }

        _varint |= (ulong)(b & 0x7F) << _shift;
        _shift += 7;
        _position++;
        return (b & 0x80) == 0;
    }

    private void OnVarint(ulong value)
    {
        switch (_state)
        {
            case State.TopTag:
            case State.TensorTag:
            {
                var nested = _state == State.TensorTag;
                _field = (int)Math.Min(value >> 3, int.MaxValue);
                if (_field == 0)
                {
                    throw Malformed("field number 0");
                }

                switch ((int)(value & 7))
                {
                    case 0:
                        _state = nested ? State.TensorVarint : State.TopVarint;
                        break;
                    case 1:
                        StartSkip(8, nested);
                        break;
                    case 2:
                        _state = nested ? State.TensorLength : State.TopLength;
                        break;
                    case 5:
                        StartSkip(4, nested);
                        break;
                    default:
                        throw Malformed($"wire type {value & 7} (groups and unknown types are not used)");
                }

                break;
            }

            case State.TopVarint:
                EndField();
                break;
            case State.TensorVarint:
                if (_field == NamedTensor.EncodingFieldNumber)
                {
                    _encoding = (TensorEncoding)(int)Math.Min(value, int.MaxValue);
                }

                EndField();
                break;
            case State.TopLength:
                if (value > (ulong)(_total - _position))
                {
                    throw Malformed($"a field of {value} bytes runs past the payload's end");
                }

                if (_field == Payload.TensorsFieldNumber)
                {
                    _tensorEnd = _position + (long)value;
                    _name = null;
                    _encoding = TensorEncoding.Unspecified;
                    _state = value == 0 ? State.TopTag : State.TensorTag;
                }
                else
                {
                    StartSkip((long)value, nested: false);
                }

                break;
            case State.TensorLength:
                if (value > (ulong)(_tensorEnd - _position))
                {
                    throw Malformed($"a tensor field of {value} bytes runs past its tensor");
                }

                StartNested((long)value);
                break;
            default:
                throw new InvalidOperationException($"No varint is read in state {_state}.");
        }
    }

    private void StartNested(long length)
    {
        if (_field == NamedTensor.NameFieldNumber && length <= MaxNameBytes)
        {
            if (length == 0)
            {
                _name = string.Empty;
                EndField();
                return;
            }

            _nameBytes = new byte[length];
            _nameFilled = 0;
            _state = State.TensorName;
            return;
        }

        if (_field == NamedTensor.DataFieldNumber && _name is not null && length > 0)
        {
            _consumer = _select(_name, _encoding, length);
            if (_consumer is not null)
            {
                _left = length;
                _state = State.TensorData;
                return;
            }
        }

        StartSkip(length, nested: true);
    }

    private void StartSkip(long length, bool nested)
    {
        if (length > (nested ? _tensorEnd : _total) - _position)
        {
            throw Malformed($"a field of {length} bytes runs past its {(nested ? "tensor" : "payload")}");
        }

        _left = length;
        _state = nested ? State.TensorSkip : State.TopSkip;
        if (length == 0)
        {
            EndField();
        }
    }

    private void EndField()
    {
        if (_state is State.TopTag or State.TopVarint or State.TopLength or State.TopSkip)
        {
            _state = State.TopTag;
            return;
        }

        if (_position > _tensorEnd)
        {
            throw Malformed("a tensor field runs past its tensor");
        }

        _state = _position == _tensorEnd ? State.TopTag : State.TensorTag;
    }

    private TransferException Malformed(string what) =>
        new($"The payload is malformed at byte {_position}: {what}.");
}
