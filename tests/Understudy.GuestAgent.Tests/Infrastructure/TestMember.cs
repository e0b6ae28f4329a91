using System.Net.Sockets;
using System.Text;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>
/// The interceptor's side of the member protocol, driven by a test: connects to the agent's
/// real coord.sock and sends and reads lines as a process's checkpoint thread would.
/// <para>
/// Its memory and images are a <see cref="SimulatedProcess"/>'s. Without <see cref="Tracking"/> it
/// writes a full image whatever WRITE asks, like a process without a tracker. With it, it behaves
/// like the interceptor's tracker: an incremental image (pages written since, holes for pages
/// dropped) when WRITE asks for one on the checkpoint its tracking starts from, a full image otherwise.
/// </para>
/// </summary>
internal sealed class TestMember : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly LineReader _reader;
    private readonly SimulatedProcess _process;

    private TestMember(Socket socket, string group, string app, int vpid)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new LineReader(_stream);
        _process = new SimulatedProcess(vpid, app);
        Group = group;
    }

    public string Group { get; }
    public string App => _process.App;
    public int Vpid => _process.Vpid;

    private long _trackedSeq;
    private long _pendingSeq;
    private string? _writtenAfterResume;

    public int PageCount => _process.PageCount;

    /// <summary>Writes incremental images when asked and possible (see the class summary).</summary>
    public bool Tracking { get; set; }

    /// <summary>Regular files captured with every image (storage checkpointing): path and contents.</summary>
    public Dictionary<string, byte[]> Files => _process.Files;

    /// <summary>For each WRITE received, whether it asked this member to capture the group's IPC namespace.</summary>
    public List<bool> CapturesIpc { get; } = [];

    /// <summary>The WRITE lines received, for tests of what was asked.</summary>
    public List<string> WriteLines { get; } = [];

    /// <summary>The kinds this member wrote, in order.</summary>
    public List<string> WrittenKinds { get; } = [];

    /// <summary>Gives the mapping <paramref name="pages"/> pages, all written (a fresh start: the next image is full).</summary>
    public void SetPages(int pages)
    {
        _process.SetPages(pages);
        _trackedSeq = 0;
    }

    /// <inheritdoc cref="SimulatedProcess.Touch"/>
    public void Touch(params int[] pages) => _process.Touch(pages);

    /// <inheritdoc cref="SimulatedProcess.Drop"/>
    public void Drop(params int[] pages) => _process.Drop(pages);

    /// <inheritdoc cref="SimulatedProcess.PagesAt"/>
    public SortedDictionary<ulong, byte[]> PagesAt(long seq) => _process.PagesAt(seq);

    /// <summary>Whether the agent sent something not read yet (only ever used to show that it has not).</summary>
    public bool HasUnreadData => _socket.Available > 0;

    public static Task<TestMember> ConnectAsync(TestAgent agent, string group, string app, int vpid) =>
        ConnectAsync(agent.CoordSocket, group, app, vpid);

    /// <summary>Connects to the member socket of an agent that runs in another process.</summary>
    public static async Task<TestMember> ConnectAsync(string coordSocket, string group, string app, int vpid)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(coordSocket));
        return new TestMember(socket, group, app, vpid);
    }

    /// <summary>Connects and registers; returns the member id of WELCOME.</summary>
    public static Task<TestMember> JoinAsync(
        TestAgent agent, string group, string app, int vpid, int vppid = 1, int execCount = 0, string origin = "launch") =>
        JoinAsync(agent.CoordSocket, group, app, vpid, vppid, execCount, origin);

    /// <summary>Connects to the member socket at <paramref name="coordSocket"/> and registers.</summary>
    public static async Task<TestMember> JoinAsync(
        string coordSocket, string group, string app, int vpid, int vppid = 1, int execCount = 0, string origin = "launch")
    {
        var member = await ConnectAsync(coordSocket, group, app, vpid);
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

    /// <summary>WRITE: writes a valid image into the staging directory and answers WRITTEN with its kind.</summary>
    public async Task<string> WriteAsync()
    {
        var write = await ExpectAsync("WRITE");
        WriteLines.Add(string.Join(' ', write));
        var options = write.Skip(5).ToList();
        Assert.True(write.Length >= 5 && options.All(o => o is "cow" or "ipc" or "files") && options.Distinct().Count() == options.Count,
            $"WRITE has 4 arguments and the options cow, ipc, files, expected: '{string.Join(' ', write)}'");
        // The agent sends the image files with every WRITE; this member writes them by name instead.
        Assert.Contains("files", options);
        var copyOnWrite = options.Contains("cow");
        CapturesIpc.Add(options.Contains("ipc"));
        Assert.Contains(write[3], (string[])["full", "incremental"]);
        var dir = TokenCodec.Decode(write[2]);
        var seq = long.Parse(write[1]);
        var baseSeq = long.Parse(write[4]);
        var incremental = Tracking && write[3] == "incremental" && baseSeq > 0 && _trackedSeq == baseSeq;
        var (meta, pages) = _process.WriteImage(dir, seq, incremental ? baseSeq : 0);
        _pendingSeq = seq;
        var kind = incremental ? "incremental" : "full";
        WrittenKinds.Add(kind);
        if (copyOnWrite)
        {
            // as the interceptor: the snapshot is taken; WRITTEN follows the RESUME
            _writtenAfterResume = $"WRITTEN {meta} {pages} {kind}";
            await SendAsync("CAPTURED");
        }
        else
        {
            await SendAsync($"WRITTEN {meta} {pages} {kind}");
        }
        return dir;
    }

    /// <summary>RESUME (or ABORT): answers RESUMED.</summary>
    /// <param name="writtenLater">after a copy-on-write capture, WRITTEN waits for <see cref="SendWrittenAsync"/>:
    /// the writer is still writing</param>
    public async Task ResumeAsync(string verb = "RESUME", bool writtenLater = false)
    {
        await ExpectAsync(verb);
        // As the interceptor: tracked from the image just written once it is committed; after an
        // abort the writes of the interval are kept nowhere, so the next image is full.
        _trackedSeq = verb == "RESUME" ? _pendingSeq : 0;
        _pendingSeq = 0;
        await SendAsync("RESUMED");
        if (verb == "ABORT")
        {
            _writtenAfterResume = null;   // as the interceptor: ABORT is answered by RESUMED alone
        }
        if (!writtenLater)
        {
            await SendWrittenAsync();
        }
    }

    /// <summary>WRITTEN of a copy-on-write capture, if one is still to be sent: the writer is done.</summary>
    public async Task SendWrittenAsync()
    {
        if (_writtenAfterResume is { } written)
        {
            _writtenAfterResume = null;
            await SendAsync(written);
        }
    }

    /// <summary>A whole checkpoint from this member's side.</summary>
    public async Task TakePartAsync()
    {
        await FreezeAsync();
        await WriteAsync();
        await ResumeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync();
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
