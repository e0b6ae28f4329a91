using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>
/// Reads '\n'-terminated lines from a stream. Both line protocols split on '\n' only (a '\r'
/// is an ordinary byte), which StreamReader.ReadLine would not respect.
/// </summary>
internal sealed class LineReader : IAsyncDisposable
{
    /// <summary>No protocol line is anywhere near this long; a peer that sends one is broken.</summary>
    public const int DefaultMaxLineBytes = 64 * 1024;

    private readonly PipeReader _reader;
    private readonly int _maxLineBytes;

    public LineReader(Stream stream, int maxLineBytes = DefaultMaxLineBytes)
    {
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        _maxLineBytes = maxLineBytes;
    }

    /// <summary>The next line without its '\n', or null at the end of the stream.</summary>
    /// <exception cref="InvalidDataException">the peer sent a line longer than the limit.</exception>
    public async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var newline = buffer.PositionOf((byte)'\n');
            if (newline is { } position)
            {
                var line = Encoding.UTF8.GetString(buffer.Slice(0, position));
                _reader.AdvanceTo(buffer.GetPosition(1, position));
                return line;
            }
            if (buffer.Length > _maxLineBytes)
            {
                _reader.AdvanceTo(buffer.End);
                throw new InvalidDataException($"line longer than {_maxLineBytes} bytes");
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                // A partial last line without '\n' is not a message.
                _reader.AdvanceTo(buffer.End);
                return null;
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    public ValueTask DisposeAsync() => _reader.CompleteAsync();
}
