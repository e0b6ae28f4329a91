using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Tests;

public class TokenCodecTests
{
    [Theory]
    [InlineData("web", "web")]
    [InlineData("my app", "my%20app")]
    [InlineData("100%", "100%25")]
    [InlineData("two\nlines", "two%0Alines")]
    [InlineData("tab\there", "tab%09here")]
    [InlineData("café", "café")]
    [InlineData("", "%00")]
    public void Encodes_separators_and_percent_only(string value, string encoded)
    {
        Assert.Equal(encoded, TokenCodec.Encode(value));
        Assert.Equal(value, TokenCodec.Decode(encoded));
    }

    [Theory]
    [InlineData("%", "%")]
    [InlineData("50%x", "50%x")]
    [InlineData("%2", "%2")]
    [InlineData("%41%42", "AB")]
    [InlineData("%c3%a9", "é")]
    public void Decoding_keeps_a_stray_percent(string token, string decoded) =>
        Assert.Equal(decoded, TokenCodec.Decode(token));

    [Fact]
    public void Parses_hello()
    {
        Assert.True(MemberMessageParser.TryParse("HELLO 1 web my%20app 3 1 2 exec", out var message, out _));
        Assert.Equal(new HelloMessage(1, "web", "my app", 3, 1, 2, RegistrationOrigin.Exec), message);
    }

    [Fact]
    public void Parses_a_held_process_relinking()
    {
        Assert.True(MemberMessageParser.TryParse("HELLO 1 web app 3 1 0 reattach mprotect held", out var message, out _));
        Assert.Equal(new HelloMessage(1, "web", "app", 3, 1, 0, RegistrationOrigin.Reattach, "mprotect", Held: true), message);
        Assert.True(MemberMessageParser.TryParse("HELD", out var held, out _));
        Assert.Equal(new HeldReply(), held);
        Assert.Equal("HOLD", new HoldCommand().ToLine());
    }

    [Theory]
    [InlineData("HELLO 1 web app 3 1 0")]
    [InlineData("HELLO 1 web app x 1 0 launch")]
    [InlineData("HELLO 1 web app 3 1 0 teleport")]
    [InlineData("HELLO 1 web app 3 1 0 reattach mprotect frozen")]
    [InlineData("WRITTEN 12")]
    [InlineData("WRITTEN 12 34 partial")]
    [InlineData("WRITTEN 12 34 full extra")]
    [InlineData("FORK_END")]
    [InlineData("NONSENSE")]
    [InlineData("")]
    public void Rejects_malformed_lines(string line) =>
        Assert.False(MemberMessageParser.TryParse(line, out _, out _));

    [Fact]
    public void Parses_replies()
    {
        Assert.True(MemberMessageParser.TryParse("WRITTEN 4096 8192", out var written, out _));
        Assert.Equal(new WrittenReply(4096, 8192), written);
        Assert.True(MemberMessageParser.TryParse("WRITTEN 4096 8192 incremental", out var incremental, out _));
        Assert.Equal(new WrittenReply(4096, 8192, "incremental"), incremental);
        Assert.True(MemberMessageParser.TryParse("FAILED cannot write: disk%20full", out var failed, out _));
        Assert.Equal(new FailedReply("cannot write: disk full"), failed);
        Assert.True(MemberMessageParser.TryParse("FORK_END -1", out var forkEnd, out _));
        Assert.Equal(new ForkEndMessage(-1), forkEnd);
        Assert.True(MemberMessageParser.TryParse("FROZEN 3 31500", out var surveyed, out _));
        Assert.Equal(new FrozenReply(3, 31500), surveyed);
        Assert.True(MemberMessageParser.TryParse("FROZEN 3", out var older, out _));
        Assert.Equal(new FrozenReply(3, 0), older);
    }

    [Fact]
    public void Encodes_commands()
    {
        Assert.Equal("WRITE 000002 /state/groups/web/staging/000002 full 0",
            new WriteCommand("000002", "/state/groups/web/staging/000002", "full").ToLine());
        Assert.Equal("WRITE 000005 /s%20d incremental 4",
            new WriteCommand("000005", "/s d", "incremental", 4).ToLine());
        // the image files go with the line, and the line says so: a member whose descriptors were lost fails it
        SafeHandle[] images = [new SafeFileHandle(0, ownsHandle: false), new SafeFileHandle(0, ownsHandle: false)];
        Assert.Equal("WRITE 000006 /s full 0 cow ipc files",
            new WriteCommand("000006", "/s", "full", CopyOnWrite: true, CapturesIpc: true, Images: images).ToLine());
        Assert.Equal("LAUNCH my%20app /srv 0 /bin/sh -c echo%20hi",
            InitCommands.Launch("my app", "/srv", new Dictionary<string, string>(), ["/bin/sh", "-c", "echo hi"]));
        Assert.Equal("LAUNCH db / 2 A=1 B=x%20y /bin/db",
            InitCommands.Launch("db", "/", new Dictionary<string, string> { ["A"] = "1", ["B"] = "x y" }, ["/bin/db"]));
    }

    [Fact]
    public void Parses_init_lines()
    {
        Assert.Equal(new InitReady(4242), InitMessageParser.Parse("READY 4242"));
        Assert.Equal(new InitLaunched(2), InitMessageParser.Parse("LAUNCHED 2"));
        Assert.Equal(new InitExited(2, 0, 9), InitMessageParser.Parse("EXITED 2 0 9"));
        Assert.Equal(new InitRestored(3), InitMessageParser.Parse("RESTORED 3"));
        Assert.Equal(new InitError("exec failed: no such file"), InitMessageParser.Parse("ERROR exec failed: no%20such%20file"));
        Assert.Null(InitMessageParser.Parse("READY"));
    }
}
