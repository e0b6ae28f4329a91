namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>A small file of the agent's state, the agent's alone (0600), written durably: a temporary file, flushed to disk, renamed over the old one.</summary>
internal static class PrivateFile
{
    private const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> (its directory made 0700 if missing); a crash leaves the old text or the new one.</summary>
    public static void WriteDurably(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixSocketFile.PrivateDirectory);
        var temporary = path + ".new";
        using (var file = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write))
        {
            File.SetUnixFileMode(file, Mode);
            RandomAccess.Write(file, System.Text.Encoding.UTF8.GetBytes(text), 0);
            RandomAccess.FlushToDisk(file);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
