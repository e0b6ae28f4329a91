using System.Runtime.Versioning;
using Understudy.Hactl.Cli;

[assembly: SupportedOSPlatform("linux")]

return await HactlCli.RunAsync(args);
