using System.Reflection;

namespace Understudy.Architecture.Tests;

/// <summary>
/// The assemblies of the product whose structure the rules check, each found through a type of
/// its own. A rule about another project (hactl, a later appliance or console) references that
/// project, names its assembly here, and is one more test.
/// </summary>
internal static class ProductAssemblies
{
    public static Assembly GuestAgent => typeof(GuestAgent.AgentHost).Assembly;
}
