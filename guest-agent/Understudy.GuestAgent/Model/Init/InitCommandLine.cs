using System.Diagnostics;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Model.Init;

/// <summary>What us-init restores: a committed checkpoint, and the plan naming each process's chain of images.</summary>
/// <param name="CheckpointDir">the checkpoint restored</param>
/// <param name="Plan">the restore plan (docs/protocol.md, "Restore plan"), a file only the agent writes</param>
internal sealed record InitRestore(string CheckpointDir, string Plan);

/// <summary>How us-init is started for a group (docs/protocol.md, "Start modes").</summary>
internal sealed class InitCommandLine
{
    private readonly StatePaths _paths;

    public InitCommandLine(StatePaths paths)
    {
        _paths = paths;
    }

    /// <param name="restore">the committed checkpoint to restore, or null for an empty group.</param>
    /// <exception cref="AgentException">a native part is missing.</exception>
    public ProcessStartInfo Create(string group, InitRestore? restore)
    {
        EnsureInstalled(restoring: restore is not null);
        var startInfo = new ProcessStartInfo(_paths.InitProgram);
        foreach (var arg in new[]
                 {
                     "--group", group,
                     "--coord", _paths.CoordSocket,
                     "--lib", _paths.InterceptorPath,
                     "--log", _paths.NativeLog(group),
                     "--output", _paths.OutputLog(group),
                     "--control", _paths.InitControlSocket(group),
                 })
        {
            startInfo.ArgumentList.Add(arg);
        }
        if (restore is not null)
        {
            startInfo.ArgumentList.Add("--restore");
            startInfo.ArgumentList.Add(restore.CheckpointDir);
            startInfo.ArgumentList.Add("--plan");
            startInfo.ArgumentList.Add(restore.Plan);
            startInfo.ArgumentList.Add("--restorer");
            startInfo.ArgumentList.Add(_paths.RestorerProgram);
        }
        return startInfo;
    }

    /// <summary>
    /// Checks that the native parts a start needs are there, so that a restore can refuse before
    /// it stops the running group.
    /// </summary>
    public void EnsureInstalled(bool restoring)
    {
        RequireFile(_paths.InitProgram, "us-init");
        RequireFile(_paths.InterceptorPath, "the interceptor library");
        if (restoring)
        {
            RequireFile(_paths.RestorerProgram, "us-restorer");
        }
    }

    private static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw AgentException.FailedPrecondition(
                $"{what} not found at {path}: build the native parts (./build.sh) or point the agent at them (--native-dir)");
        }
    }
}
