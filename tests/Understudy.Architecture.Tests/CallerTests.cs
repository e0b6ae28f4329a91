using System.Reflection;
using System.Xml.Linq;

namespace Understudy.Architecture.Tests;

/// <summary>
/// Callers of the agent (hactl; later the appliance, the console, another node's agent) know its
/// wire contract, never its implementation: they would otherwise link Kestrel, YamlDotNet and the
/// supervision code, and every change inside the agent would reach them.
/// </summary>
public sealed class CallerTests
{
    /// <summary>Folders whose projects are callers: every project there now and later.</summary>
    private static readonly string[] CallerFolders = ["appliance", "console"];

    private const string Implementation = "Understudy.GuestAgent";

    private static readonly string[] ImplementationProjects =
        ["guest-agent/Understudy.GuestAgent/Understudy.GuestAgent.csproj", "guest-agent/Understudy.GuestAgent.Host/Understudy.GuestAgent.Host.csproj"];

    /// <summary>
    /// Assemblies no caller may load: the agent's implementation (exactly that name: its contract
    /// is Understudy.GuestAgent.Contracts), its executable, and packages (with their sub-assemblies)
    /// that only the service needs.
    /// </summary>
    private static readonly string[] ForbiddenAssemblies =
        [Implementation, "understudy-agent", "Microsoft.AspNetCore", "YamlDotNet", "Serilog"];

    [Fact]
    public void No_caller_project_references_the_agent_implementation()
    {
        var root = RepositoryRoot();
        var callers = CallerFolders
            .Select(folder => Path.Combine(root, folder))
            .Where(Directory.Exists)
            .SelectMany(dir => Directory.EnumerateFiles(dir, "*.csproj", SearchOption.AllDirectories))
            .ToList();
        Assert.NotEmpty(callers);

        var offenders = callers
            .Where(project => ProjectClosure(project).Any(p => ImplementationProjects.Contains(Relative(root, p))))
            .Select(project => Relative(root, project))
            .ToList();
        Assert.True(offenders.Count == 0, $"these callers reach the agent's implementation through their project references: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void Hactl_loads_neither_the_agent_nor_its_server_side_packages()
    {
        var hactl = Assembly.Load(new AssemblyName("hactl"));
        var loaded = ReferenceClosure(hactl).Select(a => a.Name ?? "").ToList();
        var forbidden = loaded.Where(name => ForbiddenAssemblies.Any(f => name == f || (f != Implementation && name.StartsWith(f + ".", StringComparison.Ordinal)))).ToList();
        Assert.True(forbidden.Count == 0, $"hactl references {string.Join(", ", forbidden)}");
        Assert.Contains("Understudy.GuestAgent.Contracts", loaded);
    }

    /// <summary>The project and every project it references, directly or not.</summary>
    private static HashSet<string> ProjectClosure(string project)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var todo = new Stack<string>([Path.GetFullPath(project)]);
        while (todo.TryPop(out var current))
        {
            if (!seen.Add(current) || !File.Exists(current))
            {
                continue;
            }
            foreach (var reference in XDocument.Load(current).Descendants("ProjectReference"))
            {
                var include = (string?)reference.Attribute("Include") ?? "";
                todo.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(current)!, include.Replace('\\', '/'))));
            }
        }
        return seen;
    }

    /// <summary>The names of every assembly the given one references, directly or through the product's own.</summary>
    private static List<AssemblyName> ReferenceClosure(Assembly start)
    {
        var names = new Dictionary<string, AssemblyName>(StringComparer.Ordinal);
        var todo = new Stack<Assembly>([start]);
        while (todo.TryPop(out var assembly))
        {
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                if (reference.Name is null || !names.TryAdd(reference.Name, reference))
                {
                    continue;
                }
                // The product's own assemblies are followed; the framework's are not.
                if (reference.Name.StartsWith("Understudy", StringComparison.Ordinal))
                {
                    todo.Push(Assembly.Load(reference));
                }
            }
        }
        return [.. names.Values];
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Appliance.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Appliance.sln above {AppContext.BaseDirectory}");
    }

    private static string Relative(string root, string path) => Path.GetRelativePath(root, path).Replace('\\', '/');
}
