using System.Net.Sockets;
using System.Text;
using Understudy.GuestAgent.Members;
using Understudy.Images;

namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>
/// The interceptor's side of the member protocol, driven by a test: connects to the agent's
/// real coord.sock and sends and reads lines as a process's checkpoint thread would.
/// </summary>
internal sealed class TestMember : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly LineReader _reader;

    private TestMember(Socket socket, string group, string app, int vpid)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new LineReader(_stream);
        Group = group;
        App = app;
        Vpid = vpid;
    }

    public string Group { get; }
    public string App { get; }
    public int Vpid { get; }

    /// <summary>Whether the agent sent something not read yet (only ever used to show that it has not).</summary>
    public bool HasUnreadData => _socket.Available > 0;

    public static async Task<TestMember> ConnectAsync(TestAgent agent, string group, string app, int vpid)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(agent.CoordSocket));
        return new TestMember(socket, group, app, vpid);
    }

    /// <summary>Connects and registers; returns the member id of WELCOME.</summary>
    public static async Task<TestMember> JoinAsync(
        TestAgent agent, string group, string app, int vpid, int vppid = 1, int execCount = 0, string origin = "launch")
    {
        var member = await ConnectAsync(agent, group, app, vpid);
        await member.SendHelloAsync(vppid, execCount, origin);
        await member.ExpectAsync("WELCOME");
        return member;
    }

    public Task SendHelloAsync(int vppid = 1, int execCount = 0, string origin = "launch", int version = 1) =>
        SendAsync($"HELLO {version} {TokenCodec.Encode(Group)} {TokenCodec.Encode(App)} {Vpid} {vppid} {execCount} {origin}");

    public async Task SendAsync(string line) =>
        await _socket.SendAsync(Encoding.UTF8.GetBytes(line + "\n"), SocketFlags.None);

    /// <summary>The next line from the agent.</summary>
    public async Task<string> ReadLineAsync()
    {
        // A safety net against a hanging agent; no test depends on the time.
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        return await _reader.ReadLineAsync(limit.Token)
            ?? throw new EndOfStreamException($"the agent closed the connection of member {Vpid}");
    }

    /// <summary>Reads the next line and checks its verb; returns its tokens.</summary>
    public async Task<string[]> ExpectAsync(string verb)
    {
        var line = await ReadLineAsync();
        var tokens = TokenCodec.Split(line);
        Assert.True(tokens.Length > 0 && tokens[0] == verb, $"member {Vpid} expected {verb} but got '{line}'");
        return tokens;
    }

    /// <summary>Whether the agent closed the connection (reads until the end).</summary>
    public async Task<bool> IsClosedByAgentAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        return await _reader.ReadLineAsync(limit.Token) is null;
    }

    /// <summary>PREPARE: answers FROZEN.</summary>
    public async Task<string> FreezeAsync()
    {
        var prepare = await ExpectAsync("PREPARE");
        await SendAsync("FROZEN 1");
        return prepare[1];
    }

    /// <summary>WRITE: writes a small valid image into the staging directory and answers WRITTEN.</summary>
    public async Task<string> WriteAsync()
    {
        var write = await ExpectAsync("WRITE");
        Assert.Equal("full", write[3]);
        var dir = TokenCodec.Decode(write[2]);
        var (meta, pages) = WriteImage(dir, write[1]);
        await SendAsync($"WRITTEN {meta} {pages}");
        return dir;
    }

    /// <summary>RESUME (or ABORT): answers RESUMED.</summary>
    public async Task ResumeAsync(string verb = "RESUME")
    {
        await ExpectAsync(verb);
        await SendAsync("RESUMED");
    }

    /// <summary>A whole checkpoint from this member's side.</summary>
    public async Task TakePartAsync()
    {
        await FreezeAsync();
        await WriteAsync();
        await ResumeAsync();
    }

    /// <summary>Writes &lt;vpid&gt;.meta/.pages as the native writer would: one anonymous page of data.</summary>
    private (long Meta, long Pages) WriteImage(string dir, string checkpointId)
    {
        var seq = ulong.Parse(checkpointId);
        var vpid = (uint)Vpid;
        using var writer = new ProcessImageWriter(Path.Combine(dir, $"{vpid}.meta"), Path.Combine(dir, $"{vpid}.pages"));
        var page = new byte[ImageLayout.PageSize];
        new Random(Vpid).NextBytes(page);
        const ulong address = 0x7f00_0000_0000;
        var run = writer.AppendRun(address, page);
        var image = new ProcessImage(
            new MetaHeader(ImageKind.Full, vpid, seq),
            new ProcRecord(vpid, 1, vpid, 1, 0, 0, 0, 18, 0, 0, MmLayout.FromArray(new ulong[ImageLayout.MmFieldCount]),
                "/usr/bin/" + App, "/", App, []),
            [new VmaRecord(address, address + ImageLayout.PageSize, VmaProt.Read | VmaProt.Write, VmaFlags.None, VmaKind.Anon,
                0, 0, 0, 0, [run], "")],
            [new ThreadRecord(vpid, false, 0, App)],
            [],
            [],
            new MiscRecord([default, default, default], new ulong[ImageLayout.RlimitCount], 0));
        writer.Finish(image);
        return (new FileInfo(Path.Combine(dir, $"{vpid}.meta")).Length, new FileInfo(Path.Combine(dir, $"{vpid}.pages")).Length);
    }

    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync();
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
