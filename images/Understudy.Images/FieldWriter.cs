using System.Buffers;
using System.Buffers.Binary;

namespace Understudy.Images;

/// <summary>Appends little-endian fields to a growing buffer.</summary>
internal sealed class FieldWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    public int Length => _buffer.WrittenCount;

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public void U16(ushort v)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), v);
        _buffer.Advance(2);
    }

    public void U32(uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), v);
        _buffer.Advance(4);
    }

    public void I32(int v) => U32((uint)v);

    public void U64(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), v);
        _buffer.Advance(8);
    }

    public void I64(long v) => U64((ulong)v);

    public void Bytes(ReadOnlySpan<byte> v) => _buffer.Write(v);

    public void Zeros(int count)
    {
        _buffer.GetSpan(count)[..count].Clear();
        _buffer.Advance(count);
    }
}
