using System.Diagnostics;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Model.Init;

/// <summary>How us-init is started for a group (docs/protocol.md, "Start modes").</summary>
internal sealed class InitCommandLine
{
    private readonly StatePaths _paths;

    public InitCommandLine(StatePaths paths)
    {
        _paths = paths;
    }

    /// <param name="restoreDir">the committed checkpoint to restore, or null for an empty group.</param>
    /// <exception cref="AgentException">a native part is missing.</exception>
    public ProcessStartInfo Create(string group, string? restoreDir)
    {
        EnsureInstalled(restoring: restoreDir is not null);
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
        if (restoreDir is not null)
        {
            startInfo.ArgumentList.Add("--restore");
            startInfo.ArgumentList.Add(restoreDir);
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
