using Google.Protobuf;
using Understudy.GuestAgent.Api.Peers;
using Understudy.GuestAgent.Contracts.Peer;

namespace Understudy.GuestAgent.Tests.Peers;

/// <summary>
/// The frames of a push connection (docs/protocol.md, "Pushing checkpoints to a peer"): what is
/// written reads back, and bytes that are not frames (cut short, damaged, random) are refused with
/// <see cref="InvalidDataException"/> or a protobuf error, never anything else and never a large allocation.
/// </summary>
public sealed class PushFramesTests
{
    [Fact]
    public async Task Frames_read_back_as_written()
    {
        var data = new byte[70_000];
        new Random(1).NextBytes(data);
        using var stream = new MemoryStream();
        await PushFrames.WriteAsync(stream, PushFrameKind.Start, new PushStart { Group = "web", Id = "000007", Sender = "node-a" }, ReadOnlyMemory<byte>.Empty, default);
        await PushFrames.WriteAsync(stream, PushFrameKind.Chunk, new Chunk { File = "2.pages", Offset = 1 << 20, Crc32C = 42 }, data, default);
        await PushFrames.WriteAsync(stream, PushFrameKind.Commit, new PushCommit { ManifestJson = "{}", Retention = 3 }, ReadOnlyMemory<byte>.Empty, default);
        stream.Position = 0;

        var start = await PushFrames.ReadAsync(stream, default);
        Assert.Equal(PushFrameKind.Start, start!.Kind);
        Assert.Equal("000007", PushStart.Parser.ParseFrom(start.Header).Id);
        var chunk = await PushFrames.ReadAsync(stream, default);
        Assert.Equal(PushFrameKind.Chunk, chunk!.Kind);
        Assert.Equal(1 << 20, Chunk.Parser.ParseFrom(chunk.Header).Offset);
        Assert.Equal(data, chunk.DataMemory.ToArray());
        var commit = await PushFrames.ReadAsync(stream, default);
        Assert.Equal(3, PushCommit.Parser.ParseFrom(commit!.Header).Retention);
        Assert.Null(await PushFrames.ReadAsync(stream, default));
    }

    [Fact]
    public async Task Lengths_out_of_range_and_unknown_kinds_are_refused_before_anything_is_allocated()
    {
        await AssertRefused([9, 0, 0, 0, 0, 0, 0, 0, 0], "unknown frame kind 9");
        await AssertRefused([2, 0xff, 0xff, 0xff, 0x7f], "header length");
        await AssertRefused([2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f], "data length");
        await AssertRefused([2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], "data length");
    }

    [Fact]
    public async Task Damaged_and_cut_short_frames_fail_only_as_invalid_data()
    {
        using var written = new MemoryStream();
        await PushFrames.WriteAsync(written, PushFrameKind.Chunk, new Chunk { File = "2.pages", Offset = 4096, Crc32C = 7 }, new byte[5000], default);
        var frame = written.ToArray();
        var random = new Random(7);
        for (var i = 0; i < 3000; i++)
        {
            var bytes = (byte[])frame.Clone();
            var cut = random.Next(bytes.Length + 1);
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }
            await ReadAllTolerantly(bytes[..cut]);
            await ReadAllTolerantly(bytes);
            var noise = new byte[random.Next(64)];
            random.NextBytes(noise);
            await ReadAllTolerantly(noise);
        }
    }

    private static async Task ReadAllTolerantly(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes);
        try
        {
            while (await PushFrames.ReadAsync(stream, default) is { } frame)
            {
                // What the handler does with a header: parse it as its kind's message.
                _ = frame.Kind switch
                {
                    PushFrameKind.Start => (IMessage)PushStart.Parser.ParseFrom(frame.Header),
                    PushFrameKind.Chunk => Chunk.Parser.ParseFrom(frame.Header),
                    PushFrameKind.Commit => PushCommit.Parser.ParseFrom(frame.Header),
                    PushFrameKind.Reply => PushReply.Parser.ParseFrom(frame.Header),
                    _ => PushRefused.Parser.ParseFrom(frame.Header),
                };
            }
        }
        catch (Exception e) when (e is InvalidDataException or InvalidProtocolBufferException)
        {
        }
    }

    private static async Task AssertRefused(byte[] bytes, string why)
    {
        using var stream = new MemoryStream(bytes);
        var e = await Assert.ThrowsAsync<InvalidDataException>(async () => await PushFrames.ReadAsync(stream, default));
        Assert.Contains(why, e.Message);
    }
}
