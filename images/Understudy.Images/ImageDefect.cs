namespace Understudy.Images;

/// <summary>
/// Thrown inside the parsers, which know what is wrong but not which file of which checkpoint
/// they are looking at; public entry points turn it into an <see cref="ImageFormatException"/>
/// through an <see cref="ImageLocation"/>.
/// </summary>
/// <param name="advice">What to do, when the location's usual advice would be wrong for this defect.</param>
internal sealed class ImageDefect(string reason, bool unsupported = false, string? advice = null) : Exception(reason)
{
    /// <summary>The bytes may be fine but come from a format version this build does not read.</summary>
    public bool Unsupported { get; } = unsupported;

    public string? Advice { get; } = advice;
}
