namespace Understudy.Images;

/// <summary>
/// An image, a manifest or a checkpoint cannot be trusted. The message is one line: what failed,
/// why, and what to do.
/// </summary>
public sealed class ImageFormatException : Exception
{
    public ImageFormatException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
