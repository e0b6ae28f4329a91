using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Understudy.Hactl.Output;

/// <summary>
/// The one JSON document a command prints with --json: camelCase names (<see cref="HactlJsonContext"/>),
/// indented, and characters such as ' and + as they are.
/// </summary>
public static class Json
{
    /// <param name="type">the document's shape, from <see cref="HactlJsonContext"/>: <c>HactlJsonContext.Default.StatusResult</c>.</param>
    public static void Write<T>(T value, JsonTypeInfo<T> type) => Console.Out.WriteLine(Serialize(value, type, indented: true));

    /// <summary>The indented document, as a string (a state file).</summary>
    public static string Serialize<T>(T value, JsonTypeInfo<T> type) => Serialize(value, type, indented: true);

    /// <summary>One compact line, for streams of documents (hactl events --follow --json).</summary>
    public static string SerializeLine<T>(T value, JsonTypeInfo<T> type) => Serialize(value, type, indented: false);

    /// <summary>Prints a JSON document received as text, as it is.</summary>
    public static void WriteRaw(string json) => Console.Out.WriteLine(json.TrimEnd());

    private static string Serialize<T>(T value, JsonTypeInfo<T> type, bool indented)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            JsonSerializer.Serialize(writer, value, type);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
