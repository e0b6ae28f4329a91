using System.Buffers.Binary;

namespace Understudy.Images;

/// <summary>Reads little-endian fields in order from a span whose length the caller has already checked.</summary>
internal ref struct FieldReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public ushort U16()
    {
        ushort v = BinaryPrimitives.ReadUInt16LittleEndian(_data[_pos..]);
        _pos += 2;
        return v;
    }

    public uint U32()
    {
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    public int I32() => (int)U32();

    public ulong U64()
    {
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return v;
    }

    public long I64() => (long)U64();

    public ReadOnlySpan<byte> Bytes(int length)
    {
        ReadOnlySpan<byte> v = _data.Slice(_pos, length);
        _pos += length;
        return v;
    }
}
