using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Protocol;
using Understudy.GuestAgent.Tests.Infrastructure;
using Understudy.Images;

namespace Understudy.GuestAgent.Tests;

/// <summary>
/// The interceptor's side of the link under a real process (libunderstudy.so preloaded into
/// wl_counter), with the test as its coordinator: which line the image files sent with WRITE
/// (SCM_RIGHTS) belong to when the lines around it reach the process in one read, or the line is
/// cut across two (the process is stopped, SIGSTOP, while the lines are sent, so that it reads
/// them together once it runs again), and what it answers around an ABORT.
/// </summary>
public sealed class InterceptorLinkTests : IAsyncLifetime
{
    private const int SigCont = 18;
    private const int SigStop = 19;

    private readonly string _dir = Directory.CreateTempSubdirectory("us-link-").FullName;
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private Process? _process;
    private Socket? _link;
    private LineReader? _reader;
    private int _vpid;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_process is { } process)
        {
            Kill(process.Id, SigCont);
            process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
        }
        if (_reader is not null)
        {
            await _reader.DisposeAsync();
        }
        _link?.Dispose();
        _listener.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    // Seen under load after aborted checkpoints: a member slow to read had ABORT and the next
    // checkpoint's PREPARE still unread when WRITE came; one recvmsg returned the three lines, the
    // files went to ABORT's line and were closed with it, and WRITE, without files, created them
    // itself: "cannot create image files in .../staging/000035: file exists".
    [SkippableFact]
    public async Task The_files_sent_with_WRITE_stay_with_it_when_earlier_lines_are_read_with_it()
    {
        await StartFrozenAsync();
        var files = CreateImageFiles("000002");

        await StoppedAsync(async () =>
        {
            await SendAsync("ABORT\nPREPARE 000002\n");
            SendWithFiles($"WRITE 000002 {TokenCodec.Encode(files.Dir)} full 0 files\n", files);
        });

        await ExpectAsync("RESUMED");
        await ExpectAsync("FROZEN");
        await ExpectAsync("WRITTEN");
        Assert.True(new FileInfo(files.Meta).Length > 0, "the image was not written into the files sent with WRITE");
    }

    // A line cut by the reader's full buffer (4096 bytes) keeps its files when the next line with
    // files comes with its end: before, the first line's files were closed as unclaimed and the
    // second line's given to the first, which wrote its image into the other checkpoint's files.
    [SkippableFact]
    public async Task The_files_of_a_WRITE_cut_across_two_reads_stay_with_it()
    {
        await StartFrozenAsync();
        var first = CreateImageFiles("000002");
        var second = CreateImageFiles("000003");

        await StoppedAsync(async () =>
        {
            // Lines the process ignores, up to 10 bytes short of its buffer: the first WRITE is cut there.
            var filler = new StringBuilder();
            while (filler.Length < 4086 - 100)
            {
                filler.Append("NOTHING ").Append('x', 91).Append('\n');
            }
            var last = 4086 - filler.Length - "NOTHING \n".Length;
            filler.Append("NOTHING ").Append('x', last).Append('\n');
            Assert.Equal(4086, filler.Length);
            await SendAsync(filler.ToString());
            SendWithFiles($"WRITE 000002 {TokenCodec.Encode(first.Dir)} full 0 files\n", first);
            SendWithFiles($"WRITE 000003 {TokenCodec.Encode(second.Dir)} full 0 files\n", second);
        });

        await ExpectAsync("WRITTEN");
        await ExpectAsync("WRITTEN");
        Assert.Equal(2UL, CheckpointSeq(first.Meta));
        Assert.Equal(3UL, CheckpointSeq(second.Meta));
    }

    // The coordinator said it sent files, and none came (a process at its descriptor limit gets
    // none): creating them would fail on the coordinator's own files, or write files it never reads.
    [SkippableFact]
    public async Task A_WRITE_whose_files_did_not_arrive_fails_saying_so()
    {
        await StartFrozenAsync();
        var files = CreateImageFiles("000002");

        await SendAsync($"WRITE 000002 {TokenCodec.Encode(files.Dir)} full 0 files\n");

        var failed = await ExpectAsync("FAILED");
        Assert.Contains("the 2 image files sent with WRITE did not arrive (got 0", failed);
        Assert.Equal(0, new FileInfo(files.Meta).Length);
    }

    // An ABORT after CAPTURED: the writer still wrote the image, and its WRITTEN came after the
    // ABORT's RESUMED, where the coordinator's next round was already waiting (a FAILED there
    // failed that round too).
    [SkippableFact]
    public async Task An_ABORT_after_a_copy_on_write_capture_is_answered_by_RESUMED_alone()
    {
        await StartFrozenAsync();
        var files = CreateImageFiles("000001");
        SendWithFiles($"WRITE 000001 {TokenCodec.Encode(files.Dir)} full 0 cow files\n", files);
        await ExpectAsync("CAPTURED");

        await SendAsync("ABORT\n");
        await ExpectAsync("RESUMED");
        await SendAsync("PREPARE 000002\n");
        await ExpectAsync("FROZEN");
    }

    private sealed record ImageFiles(string Dir, string Meta, string Pages, SafeFileHandle[] Handles);

    /// <summary>
    /// Starts wl_counter under the interceptor, registers it, and freezes it with PREPARE 000001
    /// (nothing of it reads the link but its checkpoint thread from here on).
    /// </summary>
    private async Task StartFrozenAsync()
    {
        var native = NativeBuild.Find();
        Skip.If(native is null, "the native parts are not built (run ./build.sh)");
        var coord = Path.Combine(_dir, "coord.sock");
        _listener.Bind(new UnixDomainSocketEndPoint(coord));
        _listener.Listen(1);

        var start = new ProcessStartInfo(native!.Workload("wl_counter"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment =
            {
                ["LD_PRELOAD"] = native.Interceptor,
                ["UNDERSTUDY_LIB"] = native.Interceptor,
                ["UNDERSTUDY_COORD"] = coord,
                ["UNDERSTUDY_GROUP"] = "link",
                ["UNDERSTUDY_APP"] = "counter",
                ["UNDERSTUDY_LOG"] = Path.Combine(_dir, "interceptor.log"),
            },
        };
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var accepting = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        _link = await _listener.AcceptAsync(accepting.Token);
        _reader = new LineReader(new NetworkStream(_link, ownsSocket: false));
        var hello = await ExpectAsync("HELLO");
        _vpid = int.Parse(TokenCodec.Split(hello)[4], CultureInfo.InvariantCulture);
        Assert.Equal(_process.Id, _vpid);
        await SendAsync("WELCOME 1\n");
        await SendAsync("PREPARE 000001\n");
        await ExpectAsync("FROZEN");
    }

    /// <summary>The member's files in a staging directory of their own, made as the agent makes them.</summary>
    private ImageFiles CreateImageFiles(string id)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, "staging", id)).FullName;
        string meta = Path.Combine(dir, $"{_vpid}.meta"), pages = Path.Combine(dir, $"{_vpid}.pages");
        SafeFileHandle[] handles =
        [
            File.OpenHandle(meta, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite),
            File.OpenHandle(pages, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite),
        ];
        return new ImageFiles(dir, meta, pages, handles);
    }

    /// <summary>Runs <paramref name="send"/> while the process is stopped, then lets it run.</summary>
    private async Task StoppedAsync(Func<Task> send)
    {
        var pid = _process!.Id;
        Assert.Equal(0, Kill(pid, SigStop));
        await Eventually.TrueAsync(() => AllThreadsStopped(pid), "the process stops");
        try
        {
            await send();
        }
        finally
        {
            Assert.Equal(0, Kill(pid, SigCont));
        }
    }

    private static bool AllThreadsStopped(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task").All(task =>
        {
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
        });

    private async Task SendAsync(string lines) =>
        await _link!.SendAsync(Encoding.UTF8.GetBytes(lines), SocketFlags.None);

    /// <summary>Sends the line with the files, as the agent does; our own descriptors are closed then.</summary>
    private void SendWithFiles(string line, ImageFiles files)
    {
        DescriptorPassing.Send(_link!, Encoding.UTF8.GetBytes(line), files.Handles, CancellationToken.None);
        foreach (var handle in files.Handles)
        {
            handle.Dispose();
        }
    }

    private async Task<string> ExpectAsync(string verb)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var line = await _reader!.ReadLineAsync(limit.Token) ?? throw new EndOfStreamException("the process closed its link");
        Assert.True(line == verb || line.StartsWith(verb + " ", StringComparison.Ordinal), $"expected {verb}, got '{line}'");
        return line;
    }

    private static ulong CheckpointSeq(string meta) => ProcessImage.ReadMeta(meta).Header.CheckpointSeq;
}
