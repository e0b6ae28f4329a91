using System.CommandLine;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl images list|verify|inspect</c></summary>
public static class ImagesCommand
{
    public static Command Create() => new("images", "List, verify and inspect the checkpoints kept on this node")
    {
        ImagesListCommand.Create(),
        ImagesVerifyCommand.Create(),
        ImagesInspectCommand.Create(),
    };
}
