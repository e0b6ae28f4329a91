using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Operations.Launch;

/// <summary>What to launch into a group.</summary>
internal sealed record LaunchSpec(
    string Group, string App, IReadOnlyList<string> Argv, string Cwd, IReadOnlyDictionary<string, string> Env);

/// <summary>A launched application that registered.</summary>
internal sealed record LaunchedMember(string Group, string App, int Vpid, int HostPid);

/// <summary>
/// Starts and stops a group's processes: starts the group's us-init (empty, or rebuilding a
/// checkpoint's process tree), launches applications into it, stops the group, and keeps the
/// group's state in line with what us-init reports (exits, its own death). Only the group's
/// lifecycle calls it (Operations/Lifecycle), which holds the group's lifecycle lock where a start
/// or stop of us-init needs it.
/// </summary>
internal sealed class GroupLauncher : IInitEventSink
{
    private readonly GroupRegistry _groups;
    private readonly InitCommandLine _commandLine;
    private readonly StatePaths _paths;
    private readonly AgentOptions _options;
    private readonly ILogger<GroupLauncher> _logger;
    private readonly ILogger<InitProcess> _initLogger;
    private readonly IEventPublisher _events;
    private volatile bool _shuttingDown;

    public GroupLauncher(
        GroupRegistry groups, InitCommandLine commandLine, StatePaths paths, IOptions<AgentOptions> options,
        ILogger<GroupLauncher> logger, ILogger<InitProcess> initLogger, IEventPublisher events)
    {
        _groups = groups;
        _commandLine = commandLine;
        _paths = paths;
        _options = options.Value;
        _logger = logger;
        _initLogger = initLogger;
        _events = events;
    }

    /// <summary>The group's us-init, started if it is not running; under the group's lifecycle lock.</summary>
    public async Task<InitProcess> EnsureInitAsync(Group group, CancellationToken cancellationToken) =>
        group.Init is { HasExited: false } running
            ? running
            : await StartInitAsync(group, restore: null, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Launches an application into the group's running us-init and returns once the application
    /// said HELLO, so that it is a member as soon as this returns.
    /// </summary>
    public async Task<LaunchedMember> LaunchAsync(Group group, InitProcess init, LaunchSpec spec, CancellationToken cancellationToken)
    {
        StaticProgramCheck.Require(spec);
        // Counts as a registration in flight until the application said HELLO, so a checkpoint
        // never starts with it half-registered (and a launch waits while a checkpoint runs).
        var registration = await group.Gate.BeginAsync(RegistrationKind.Launch, 0, cancellationToken).ConfigureAwait(false);
        try
        {
            int vpid;
            Task<InitExited> exit;
            try
            {
                (vpid, exit) = await init.LaunchAsync(spec.App, spec.Cwd, spec.Env, spec.Argv, cancellationToken).ConfigureAwait(false);
            }
            catch (InitProcessException e)
            {
                throw AgentException.FailedPrecondition(
                    $"launch of {spec.App} in group {group.Name} failed: {e.Message}; see {_paths.NativeLog(group.Name)}");
            }
            _events.Publish(new MemberLaunched(group.Name, spec.App, vpid, spec.Argv[0]));

            await WaitForRegistrationAsync(group, init, spec.App, vpid, exit, cancellationToken).ConfigureAwait(false);
            var member = group.Members.Find(vpid);
            return new LaunchedMember(group.Name, member?.App ?? spec.App, vpid, member?.HostPid ?? 0);
        }
        finally
        {
            group.Gate.Finish(registration);
        }
    }

    /// <summary>Stops the group: every process of it is killed. Returns how many members it had.</summary>
    public async Task<int> StopAsync(Group group)
    {
        var init = group.Init;
        var count = group.Members.Count;
        if (init is not null)
        {
            await init.StopAsync(_options.StopGrace).ConfigureAwait(false);
        }
        Forget(group, init);
        if (init is not null || count > 0)
        {
            _logger.LogInformation("Group {Group} stopped: {Members} members ended", group.Name, count);
        }
        return count;
    }

    /// <summary>
    /// Starts the group's us-init and waits for READY. With <paramref name="restore"/>, us-init
    /// rebuilds that checkpoint's process tree.
    /// </summary>
    public async Task<InitProcess> StartInitAsync(Group group, InitRestore? restore, CancellationToken cancellationToken)
    {
        if (_shuttingDown)
        {
            throw AgentException.Unavailable("the guest agent is shutting down");
        }
        Directory.CreateDirectory(_paths.GroupDir(group.Name), UnixSocketFile.PrivateDirectory);
        var startInfo = _commandLine.Create(group.Name, restore);
        InitProcess init;
        try
        {
            init = InitProcess.Start(group.Name, startInfo, restore is not null, this, _initLogger);
        }
        catch (InitProcessException e)
        {
            throw AgentException.FailedPrecondition($"group {group.Name} cannot start: {e.Message}");
        }
        group.Init = init;
        if (_shuttingDown)
        {
            // StopAllAsync may have passed this group already.
            init.Kill();
            throw AgentException.Unavailable("the guest agent is shutting down");
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.InitStartTimeout);
        try
        {
            await init.WaitReadyAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InitProcessException or OperationCanceledException)
        {
            init.Kill();
            Forget(group, init);
            cancellationToken.ThrowIfCancellationRequested();
            var why = e is InitProcessException ? e.Message : $"it did not say READY within {Durations.Describe(_options.InitStartTimeout)}";
            throw AgentException.Unavailable($"us-init of group {group.Name} did not start: {why}; see {_paths.NativeLog(group.Name)}");
        }
        if (restore is null)
        {
            _logger.LogInformation("Group {Group} started: us-init host pid {InitPid}", group.Name, init.HostPid);
        }
        else
        {
            _logger.LogInformation("Group {Group} started for a restore: us-init host pid {InitPid}", group.Name, init.HostPid);
        }
        return init;
    }

    /// <summary>
    /// Takes up the group's us-init if one outlived the previous agent (it listens on the
    /// group's control socket): the group is running again as far as this agent knows, its
    /// processes register again by themselves, and the exits us-init kept are reported. Null
    /// when no us-init listens there; a socket nobody answers on is removed.
    /// </summary>
    public async Task<InitProcess?> AdoptAsync(Group group, CancellationToken cancellationToken)
    {
        var path = _paths.InitControlSocket(group.Name);
        if (!Libc.IsSocket(path))
        {
            return null;
        }
        if (SocketInitChannel.Connect(path) is not { } channel)
        {
            TryDelete(path);
            return null;
        }
        var init = InitProcess.Attach(group.Name, channel, this, _initLogger);
        group.Init = init;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.InitStartTimeout);
        try
        {
            await init.WaitReadyAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InitProcessException or OperationCanceledException)
        {
            // Not a us-init that answers: leave it be (it is not this agent's to kill) and forget it.
            Forget(group, init);
            channel.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            _logger.LogWarning("Group {Group}: the process on {Socket} did not attach ({Error}); the group is not taken up", group.Name, path, e.Message);
            return null;
        }
        _logger.LogInformation("Group {Group} taken up: us-init host pid {InitPid} outlived the previous agent", group.Name, init.HostPid);
        return init;
    }

    /// <summary>On shutdown: no process of any group is left behind.</summary>
    public async Task StopAllAsync()
    {
        _shuttingDown = true;
        // Without the groups' lifecycle locks: a restore in progress must not delay the shutdown; it
        // fails when its us-init is killed.
        await Task.WhenAll(_groups.All().Select(async group =>
        {
            try
            {
                await StopAsync(group).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Stopping group {Group} failed", group.Name);
            }
        })).ConfigureAwait(false);
    }

    public void OnMemberExited(InitProcess init, InitExited exit)
    {
        var group = _groups.Find(init.Group);
        var member = group?.Members.Find(exit.Vpid);
        _events.Publish(new MemberExited(init.Group, group?.Members.AppOf(exit.Vpid), exit.Vpid, exit.ExitCode, exit.Signal, init.HostPid));
        // A member whose connection is still open is removed when it closes; only one that no
        // longer has a connection (it was exec'ing) needs removing here. This also keeps a
        // newer process that reused the vpid.
        if (group is not null && member is not null && ReferenceEquals(group.Init, init)
            && member.Connection is null or { IsClosed: true })
        {
            group.Members.Remove(member);
        }
    }

    public void OnInitExited(InitProcess init, int exitCode, bool expected)
    {
        if (!expected)
        {
            _events.Publish(new GroupInitDied(init.Group, init.HostPid, $"{init.DescribeExit()}; see {_paths.NativeLog(init.Group)}"));
        }
        if (_groups.Find(init.Group) is { } group)
        {
            Forget(group, init);
        }
    }

    private async Task WaitForRegistrationAsync(
        Group group, InitProcess init, string app, int vpid, Task<InitExited> exit, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.LaunchRegistrationTimeout);
        var joined = group.Members.WaitUntilAsync(members => members.ContainsKey(vpid), deadline.Token);
        var first = await Task.WhenAny(joined, exit, init.Exited).ConfigureAwait(false);
        if (first == joined && joined.IsCompletedSuccessfully)
        {
            return;
        }
        await deadline.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (first == exit)
        {
            throw AgentException.FailedPrecondition(
                $"application {app} exited ({exit.Result.Describe()}) before it registered; see {_paths.OutputLog(group.Name)} and {_paths.NativeLog(group.Name)}");
        }
        if (first == init.Exited)
        {
            throw AgentException.Unavailable(
                $"us-init of group {group.Name} exited while launching {app}; see {_paths.NativeLog(group.Name)}");
        }
        throw AgentException.FailedPrecondition(
            $"application {app} did not register: is it dynamically linked? see {_paths.NativeLog(group.Name)}");
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogDebug("Could not remove {Socket}: {Error}", path, e.Message);
        }
    }

    /// <summary>The group's processes are gone: drop its members and what they had in flight.</summary>
    private static void Forget(Group group, InitProcess? init)
    {
        if (!ReferenceEquals(group.Init, init))
        {
            // A newer us-init (a restore) owns the group now.
            return;
        }
        group.Init = null;
        foreach (var member in group.Members.Clear())
        {
            member.Connection?.Close();
        }
        group.Gate.DropProcessRegistrations();
    }
}
