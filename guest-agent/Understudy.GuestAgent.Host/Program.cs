using System.Runtime.Versioning;
using Understudy.GuestAgent.Host;

[assembly: SupportedOSPlatform("linux")]

return await AgentProgram.RunAsync(args);
