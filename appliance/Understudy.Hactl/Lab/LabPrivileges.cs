using System.Globalization;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Native;

namespace Understudy.Hactl.Lab;

/// <summary>
/// What every lab command needs, checked before it does anything: CAP_SYS_ADMIN (namespaces,
/// mounts, setns), CAP_NET_ADMIN (links and addresses), namespaces allowed by the kernel's
/// limits, iproute2's ip, and the us-lab helper.
/// </summary>
public static class LabPrivileges
{
    private const int CapNetAdmin = 12;
    private const int CapSysAdmin = 21;

    private static readonly string[] NamespaceLimits = ["max_net_namespaces", "max_mnt_namespaces", "max_pid_namespaces"];

    public static void Check(LabTools tools, string what)
    {
        var effective = EffectiveCapabilities();
        foreach (var (bit, name) in new[] { (CapSysAdmin, "CAP_SYS_ADMIN"), (CapNetAdmin, "CAP_NET_ADMIN") })
        {
            if ((effective & (1UL << bit)) == 0)
            {
                throw new HactlException(what, $"hactl lacks {name}, which lab nodes (namespaces, links) need",
                    "run it as root (sudo), or grant it CAP_SYS_ADMIN and CAP_NET_ADMIN");
            }
        }

        foreach (var limit in NamespaceLimits)
        {
            var path = "/proc/sys/user/" + limit;
            if (File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n == 0)
            {
                throw new HactlException(what, $"{path} is 0: the kernel allows no such namespaces", $"raise it (sysctl -w user.{limit}=1000)");
            }
        }

        if (!File.Exists(tools.UsLab))
        {
            throw new HactlException(what, $"{tools.UsLab} does not exist",
                "build it with ./build.sh, or point --native-dir at the directory that holds it");
        }

        try
        {
            ProgramResolver.Resolve(LabTools.IpProgram, "/");
        }
        catch (HactlException)
        {
            throw new HactlException(what, "iproute2's 'ip' is not on PATH", "install iproute2 (./build.sh installs it on Debian)");
        }
    }

    /// <summary>CapEff of this process, from /proc/self/status.</summary>
    private static ulong EffectiveCapabilities()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
            {
                return ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }
}
