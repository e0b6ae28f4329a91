namespace Understudy.Images;

/// <summary>
/// Thrown inside the parsers, which know what is wrong but not which file of which checkpoint
/// they are looking at; public entry points turn it into an <see cref="ImageFormatException"/>
/// through an <see cref="ImageLocation"/>.
/// </summary>
internal sealed class ImageDefect(string reason, bool unsupported = false) : Exception(reason)
{
    /// <summary>The bytes may be fine but come from a format version this build does not read.</summary>
    public bool Unsupported { get; } = unsupported;
}
