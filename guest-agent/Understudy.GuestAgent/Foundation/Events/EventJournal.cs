using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.Images;

namespace Understudy.GuestAgent.Foundation.Events;

/// <summary>
/// The event history: one JSON object per line in STATE/events.jsonl, so that it survives
/// agent restarts. When the file passes <see cref="RotateBytes"/> it becomes events.1.jsonl
/// (replacing the one before), which bounds the history to about twice that.
/// <para>
/// A full disk (or any failed write) loses nothing: an event that cannot be written stays in
/// memory, in order, and is written with those after it once writing works again (tried at the
/// next event and every <see cref="RetryInterval"/>); a partly written line is cut off again at
/// once, and a truncated last line that a crash left is cut off when the journal is first
/// written, so that the next event does not stick to it.
/// </para>
/// </summary>
internal sealed class EventJournal : IDisposable
{
    public const long RotateBytes = 8 << 20;
    public static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly object _sync = new();
    private readonly string _path;
    private readonly string _previousPath;
    private readonly ILogger<EventJournal> _logger;
    private readonly Queue<(EventRecord Record, byte[] Line)> _pending = new();
    private readonly Timer _retry;
    private SafeFileHandle? _file;
    private bool _repaired;
    private string? _failing;

    public EventJournal(StatePaths paths, ILogger<EventJournal> logger)
    {
        _path = paths.EventsJournal;
        _previousPath = Path.ChangeExtension(_path, ".1.jsonl");
        _logger = logger;
        _retry = new Timer(_ => Retry(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The highest sequence number in the history, 0 if it is empty.</summary>
    public long LastSeq() => Read().LastOrDefault()?.Seq ?? 0;

    /// <summary>
    /// Appends one event. A write that fails is logged, not thrown: the event is kept in memory
    /// and written later, and it still goes to subscribers.
    /// </summary>
    public void Append(EventRecord record)
    {
        var line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, Json) + "\n");
        lock (_sync)
        {
            _pending.Enqueue((record, line));
            Flush();
        }
    }

    /// <summary>The recorded events, oldest first, then those still waiting to be written. Lines that do not parse are skipped.</summary>
    public IEnumerable<EventRecord> Read()
    {
        List<EventRecord> pending;
        lock (_sync)
        {
            pending = _pending.Select(p => p.Record).ToList();
        }
        var last = 0L;
        foreach (var path in new[] { _previousPath, _path })
        {
            if (!File.Exists(path))
            {
                continue;
            }
            using var stream = new FileStream(path, System.IO.FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (reader.ReadLine() is { } line)
            {
                if (Parse(line) is { } record)
                {
                    last = Math.Max(last, record.Seq);
                    yield return record;
                }
            }
        }
        // Written meanwhile (between the snapshot and the read): already returned from the file.
        foreach (var record in pending.Where(r => r.Seq > last))
        {
            yield return record;
        }
    }

    public void Dispose()
    {
        lock (_sync)
        {
            Flush();
            _retry.Dispose();
            _file?.Dispose();
            _file = null;
        }
    }

    private void Retry()
    {
        lock (_sync)
        {
            Flush();
        }
    }

    /// <summary>Writes the pending events in order, as far as it can. Must be called under the lock.</summary>
    private void Flush()
    {
        try
        {
            while (_pending.TryPeek(out var next))
            {
                var file = _file ??= Open();
                var length = RandomAccess.GetLength(file);
                try
                {
                    RandomAccess.Write(file, next.Line, length);
                }
                catch (IOException)
                {
                    // A line written in part would glue the next one to it: cut it off again.
                    RandomAccess.SetLength(file, length);
                    throw;
                }
                _pending.Dequeue();
                if (length + next.Line.Length > RotateBytes)
                {
                    Rotate();
                }
            }
            if (_failing is not null)
            {
                _logger.LogInformation("Events are recorded in {Path} again; none was lost", _path);
                _failing = null;
            }
            _retry.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (_failing != e.Message)
            {
                _logger.LogWarning(
                    "Could not record event {Seq} in {Path}: {Error}; it is kept in memory, with those after it, and written once that works again",
                    _pending.Peek().Record.Seq, _path, e.Message);
                _failing = e.Message;
            }
            _file?.Dispose();
            _file = null;
            _retry.Change(RetryInterval, Timeout.InfiniteTimeSpan);
        }
    }

    private static EventRecord? Parse(string line)
    {
        try
        {
            return line.Length == 0 ? null : JsonSerializer.Deserialize<EventRecord>(line, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private SafeFileHandle Open()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!, UnixSocketFile.PrivateDirectory);
        var file = NoFollowFile.Append(_path, FileMode);
        try
        {
            if (!_repaired)
            {
                RepairLastLine(file);
                _repaired = true;
            }
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A last line without its newline was cut short by a crash: it is dropped, so that the next event starts a line of its own.</summary>
    private void RepairLastLine(SafeFileHandle file)
    {
        var length = RandomAccess.GetLength(file);
        if (length == 0)
        {
            return;
        }
        var buffer = new byte[Math.Min(length, 64 * 1024)];
        var end = length;
        while (end > 0)
        {
            var start = Math.Max(0, end - buffer.Length);
            var span = buffer.AsSpan(0, (int)(end - start));
            RandomAccess.Read(file, span, start);
            var newline = span.LastIndexOf((byte)'\n');
            if (newline >= 0)
            {
                Truncate(file, length, start + newline + 1);
                return;
            }
            end = start;
        }
        Truncate(file, length, 0);
    }

    private void Truncate(SafeFileHandle file, long length, long keep)
    {
        if (keep == length)
        {
            return;
        }
        RandomAccess.SetLength(file, keep);
        _logger.LogWarning(
            "The last line of {Path} was cut short (the agent stopped while writing it): its {Bytes} bytes were removed", _path, length - keep);
    }

    private void Rotate()
    {
        _file?.Dispose();
        _file = null;
        File.Move(_path, _previousPath, overwrite: true);
    }
}
