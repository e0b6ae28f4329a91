using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Foundation.Events;

/// <summary>
/// The event history: one JSON object per line in STATE/events.jsonl, so that it survives
/// agent restarts. When the file passes <see cref="RotateBytes"/> it becomes events.1.jsonl
/// (replacing the one before), which bounds the history to about twice that.
/// </summary>
internal sealed class EventJournal : IDisposable
{
    public const long RotateBytes = 8 << 20;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly string _path;
    private readonly string _previousPath;
    private readonly ILogger<EventJournal> _logger;
    private FileStream? _file;

    public EventJournal(StatePaths paths, ILogger<EventJournal> logger)
    {
        _path = paths.EventsJournal;
        _previousPath = Path.ChangeExtension(_path, ".1.jsonl");
        _logger = logger;
    }

    /// <summary>The highest sequence number in the history, 0 if it is empty. Not thread-safe: the bus serializes.</summary>
    public long LastSeq() => Read().LastOrDefault()?.Seq ?? 0;

    /// <summary>Appends one event. A write that fails is logged, not thrown: the event still goes to subscribers.</summary>
    public void Append(EventRecord record)
    {
        try
        {
            var file = _file ??= Open();
            file.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, Json) + "\n"));
            file.Flush();
            if (file.Length > RotateBytes)
            {
                Rotate();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Could not record event {Seq} in {Path}: {Error}", record.Seq, _path, e.Message);
            _file?.Dispose();
            _file = null;
        }
    }

    /// <summary>The recorded events, oldest first. Lines that do not parse (a crash mid-write) are skipped.</summary>
    public IEnumerable<EventRecord> Read()
    {
        foreach (var path in new[] { _previousPath, _path })
        {
            if (!File.Exists(path))
            {
                continue;
            }
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (reader.ReadLine() is { } line)
            {
                if (Parse(line) is { } record)
                {
                    yield return record;
                }
            }
        }
    }

    public void Dispose() => _file?.Dispose();

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

    private FileStream Open()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!, UnixSocketFile.PrivateDirectory);
        var options = new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        return new FileStream(_path, options);
    }

    private void Rotate()
    {
        _file?.Dispose();
        _file = null;
        File.Move(_path, _previousPath, overwrite: true);
    }
}
