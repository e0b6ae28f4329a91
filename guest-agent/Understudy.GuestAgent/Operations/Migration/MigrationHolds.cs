using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// Fault injection for tests, from the agent's environment (the variable of <see cref="MergeFaults"/>):
/// with <c>UNDERSTUDY_AGENT_FAULT=migration-holds</c>, a migration stops at one of its moments
/// (<see cref="FinalSend"/>, <see cref="TakeOverLate"/>, <see cref="TakeOverResume"/>, <see cref="TakeOverReply"/>) while the
/// file <c>STATE/fault-holds/GROUP.MOMENT</c> exists, so that a test can cut the link exactly there.
/// Reaching the moment creates <c>GROUP.MOMENT.held</c> beside it; removing <c>GROUP.MOMENT</c> lets
/// the migration go on. A hold ends too when the operation it holds is cancelled. Unset in production.
/// </summary>
internal sealed class MigrationHolds
{
    /// <summary>The source, the group frozen for the last round, before it sends that round.</summary>
    public const string FinalSend = "final-send";

    /// <summary>
    /// The target, a takeover received, before it is checked against the fences (<see cref="MigrationFences"/>).
    /// Unlike the others, this hold outlasts the call's cancellation, and the takeover then goes on as if
    /// that had never arrived: a request a healed link delivers after its source gave up.
    /// </summary>
    public const string TakeOverLate = "takeover-late";

    /// <summary>The target, the group restored and still frozen there, before its processes are resumed.</summary>
    public const string TakeOverResume = "takeover-resume";

    /// <summary>The target, the group running there, before it answers the takeover.</summary>
    public const string TakeOverReply = "takeover-reply";

    private const string Setting = "migration-holds";
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
    private readonly string? _dir;
    private readonly ILogger<MigrationHolds> _logger;

    public MigrationHolds(IOptions<AgentOptions> options, ILogger<MigrationHolds> logger)
        : this(Environment.GetEnvironmentVariable(MergeFaults.Variable), options.Value.StateDir, logger)
    {
    }

    public MigrationHolds(string? setting, string stateDir, ILogger<MigrationHolds> logger)
    {
        _logger = logger;
        var enabled = (setting ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Contains(Setting);
        _dir = enabled ? Path.Combine(stateDir, "fault-holds") : null;
    }

    /// <summary>Waits here while the test holds the group's migration at <paramref name="moment"/>; at once otherwise.</summary>
    /// <exception cref="OperationCanceledException">the held operation was cancelled meanwhile</exception>
    public async Task AtAsync(string moment, string group, CancellationToken cancellationToken)
    {
        if (Gate(moment, group) is not { } gate)
        {
            return;
        }
        await HoldAsync(gate, moment, group, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <see cref="TakeOverLate"/>: waits here while the test holds the takeover, whatever becomes of its
    /// call, and returns the token it goes on with: none once it was held (its cancellation lost), the
    /// call's own otherwise.
    /// </summary>
    public async Task<CancellationToken> LateAsync(string group, CancellationToken cancellationToken)
    {
        if (Gate(TakeOverLate, group) is not { } gate)
        {
            return cancellationToken;
        }
        await HoldAsync(gate, TakeOverLate, group, CancellationToken.None).ConfigureAwait(false);
        return CancellationToken.None;
    }

    private string? Gate(string moment, string group) =>
        _dir is not null && Path.Combine(_dir, $"{group}.{moment}") is var gate && File.Exists(gate) ? gate : null;

    private async Task HoldAsync(string gate, string moment, string group, CancellationToken cancellationToken)
    {
        _logger.LogWarning("Fault injection: migration of group {Group} held at {Moment} until {Gate} is removed", group, moment, gate);
        await File.WriteAllTextAsync(gate + ".held", "", CancellationToken.None).ConfigureAwait(false);
        try
        {
            while (File.Exists(gate))
            {
                await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            _logger.LogWarning("Fault injection: migration of group {Group} held at {Moment}: the operation was cancelled meanwhile", group, moment);
            throw;
        }
        _logger.LogWarning("Fault injection: migration of group {Group} goes on from {Moment}", group, moment);
    }
}
