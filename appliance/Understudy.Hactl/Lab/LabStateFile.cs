using System.Text.Json;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Lab;

/// <summary>Reads and writes DIR/lab.json; a write replaces the file atomically (rename).</summary>
public static class LabStateFile
{
    public static void Write(LabLayout layout, LabState state)
    {
        var temporary = layout.StateFile + ".tmp";
        File.WriteAllText(temporary, Json.Serialize(state, HactlJsonContext.Default.LabState) + "\n");
        File.Move(temporary, layout.StateFile, overwrite: true);
    }

    /// <summary>The recorded lab, or null when DIR holds none.</summary>
    public static LabState? TryRead(LabLayout layout)
    {
        if (!File.Exists(layout.StateFile))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(layout.StateFile), HactlJsonContext.Default.LabState)
                   ?? throw new JsonException("the file holds null");
        }
        catch (JsonException e)
        {
            throw new HactlException($"cannot read the lab in {layout.Dir}", $"{layout.StateFile} is not a lab state file ({ErrorLine.Clause(e.Message)})",
                $"run 'hactl lab down {layout.Dir}', which removes the lab's processes without it");
        }
    }

    /// <summary>The recorded lab; fails with one line when DIR holds none.</summary>
    public static LabState Read(LabLayout layout, string what) =>
        TryRead(layout) ?? throw new HactlException(what, $"there is no lab in {layout.Dir} (no lab.json)",
            $"bring one up with 'hactl lab up {layout.Dir}'");

    public static void Delete(LabLayout layout) => File.Delete(layout.StateFile);
}
