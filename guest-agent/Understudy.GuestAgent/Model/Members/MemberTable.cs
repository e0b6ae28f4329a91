namespace Understudy.GuestAgent.Model.Members;

/// <summary>
/// The members of one group by vpid, with a way to wait until the table satisfies a condition
/// (a launched or restored process said HELLO).
/// </summary>
internal sealed class MemberTable
{
    private readonly object _sync = new();
    private readonly Dictionary<int, Member> _members = [];
    // us-init's EXITED usually arrives after the connection closed and the member was removed;
    // remembering recent names lets that event still say which application it was.
    private readonly Dictionary<int, string> _departed = [];
    private const int DepartedMemory = 256;
    private TaskCompletionSource _changed = NewSignal();

    public int Count
    {
        get { lock (_sync) { return _members.Count; } }
    }

    /// <summary>
    /// Adds the member, replacing one with the same vpid: the kernel never gives one vpid to two
    /// live processes of a pid namespace, so the old entry is an exec'd image or a dead process.
    /// </summary>
    public Member? Register(Member member)
    {
        lock (_sync)
        {
            _members.TryGetValue(member.Vpid, out var replaced);
            _members[member.Vpid] = member;
            Signal();
            return replaced;
        }
    }

    /// <summary>Removes <paramref name="member"/> if it is still the entry for its vpid.</summary>
    public bool Remove(Member member)
    {
        lock (_sync)
        {
            if (!_members.TryGetValue(member.Vpid, out var current) || !ReferenceEquals(current, member))
            {
                return false;
            }
            _members.Remove(member.Vpid);
            Remember(member);
            Signal();
            return true;
        }
    }

    public Member? Find(int vpid)
    {
        lock (_sync)
        {
            return _members.GetValueOrDefault(vpid);
        }
    }

    /// <summary>The application name of a member, or of one that recently left.</summary>
    public string? AppOf(int vpid)
    {
        lock (_sync)
        {
            return _members.TryGetValue(vpid, out var member) ? member.App : _departed.GetValueOrDefault(vpid);
        }
    }

    public IReadOnlyList<Member> Snapshot()
    {
        lock (_sync)
        {
            return _members.Values.OrderBy(m => m.Vpid).ToList();
        }
    }

    public IReadOnlyList<Member> Clear()
    {
        lock (_sync)
        {
            var all = _members.Values.OrderBy(m => m.Vpid).ToList();
            _members.Clear();
            all.ForEach(Remember);
            Signal();
            return all;
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds for the table's content.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyDictionary<int, Member>, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_sync)
            {
                if (condition(_members))
                {
                    return;
                }
                changed = _changed.Task;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Must be called under the lock.</summary>
    private void Remember(Member member)
    {
        if (_departed.Count >= DepartedMemory)
        {
            _departed.Clear();
        }
        _departed[member.Vpid] = member.App;
    }

    private void Signal()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
