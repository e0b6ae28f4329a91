using System.Reflection;

namespace Understudy.Architecture.Tests;

/// <summary>
/// The assemblies of the product whose structure the rules check, each found through a type of
/// its own. The rules about the agent's callers (hactl, a later appliance or console) are in
/// CallerTests.
/// </summary>
internal static class ProductAssemblies
{
    public static Assembly GuestAgent => typeof(GuestAgent.AgentHost).Assembly;
}
