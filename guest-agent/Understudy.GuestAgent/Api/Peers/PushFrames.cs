using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;

namespace Understudy.GuestAgent.Api.Peers;

/// <summary>The kinds of frame on a push connection (docs/protocol.md, "Pushing checkpoints to a peer").</summary>
internal enum PushFrameKind : byte
{
    Start = 1,
    Chunk = 2,
    Commit = 3,
    Reply = 4,
    Refused = 5,
}

/// <summary>A frame read: its header (a peer_services.proto message) and its data, in a pooled array the reader returns.</summary>
internal sealed record PushFrame(PushFrameKind Kind, byte[] Header, byte[]? Data, int DataLength)
{
    public ReadOnlyMemory<byte> DataMemory => Data.AsMemory(0, DataLength);
}

/// <summary>
/// Push connections carry checkpoint files at the link's speed, without HTTP/2 and protobuf
/// copying every chunk: after the TLS handshake of the peer endpoint, the client sends
/// <see cref="Magic"/>, then frames, each <c>kind:u8 header_length:u32 header data_length:u32 data</c>
/// (little-endian), where the header is a small protobuf message and the data raw file bytes.
/// </summary>
internal static class PushFrames
{
    public const int MaxHeaderBytes = 64 << 10;
    public const int MaxDataBytes = 16 << 20;

    /// <summary>What a push connection begins with; an HTTP/2 connection begins otherwise ("PRI * HTTP/2.0").</summary>
    public static ReadOnlySpan<byte> Magic => "USPUSH1\n"u8;

    public static async ValueTask WriteAsync(Stream stream, PushFrameKind kind, IMessage header, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var headerBytes = header.CalculateSize();
        var prefix = ArrayPool<byte>.Shared.Rent(1 + 4 + headerBytes + 4);
        try
        {
            prefix[0] = (byte)kind;
            BinaryPrimitives.WriteInt32LittleEndian(prefix.AsSpan(1), headerBytes);
            header.WriteTo(prefix.AsSpan(5, headerBytes));
            BinaryPrimitives.WriteInt32LittleEndian(prefix.AsSpan(5 + headerBytes), data.Length);
            await stream.WriteAsync(prefix.AsMemory(0, 9 + headerBytes), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(prefix);
        }
        if (!data.IsEmpty)
        {
            await stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the next frame, or null where the stream ends between frames.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a frame: a length out of range, an unknown kind, or an end within a frame.</exception>
    public static async ValueTask<PushFrame?> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var fixedPart = new byte[5];
        var first = await stream.ReadAtLeastAsync(fixedPart, 5, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (first == 0)
        {
            return null;
        }
        if (first < 5)
        {
            throw new InvalidDataException("the connection ended within a frame");
        }
        var kind = (PushFrameKind)fixedPart[0];
        if (!Enum.IsDefined(kind))
        {
            throw new InvalidDataException($"unknown frame kind {fixedPart[0]}");
        }
        var header = new byte[Length(fixedPart.AsSpan(1), MaxHeaderBytes, "header")];
        await ReadExactlyAsync(stream, header, cancellationToken).ConfigureAwait(false);
        await ReadExactlyAsync(stream, fixedPart.AsMemory(0, 4), cancellationToken).ConfigureAwait(false);
        var dataBytes = Length(fixedPart, MaxDataBytes, "data");
        byte[]? data = null;
        if (dataBytes > 0)
        {
            data = ArrayPool<byte>.Shared.Rent(dataBytes);
            try
            {
                await ReadExactlyAsync(stream, data.AsMemory(0, dataBytes), cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(data);
                throw;
            }
        }
        return new PushFrame(kind, header, data, dataBytes);
    }

    /// <summary>Gives a frame's data array back to the pool, once nothing refers to it.</summary>
    public static void Release(ReadOnlyMemory<byte> data)
    {
        if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var segment) && segment.Array is { Length: > 0 } array)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    private static int Length(ReadOnlySpan<byte> bytes, int limit, string what)
    {
        var length = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (length < 0 || length > limit)
        {
            throw new InvalidDataException($"a frame's {what} length {length} is out of range (at most {limit})");
        }
        return length;
    }

    private static async ValueTask ReadExactlyAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException("the connection ended within a frame");
        }
    }
}
