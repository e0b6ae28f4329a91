using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Merging;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Tests.Infrastructure;
using Understudy.Images;

namespace Understudy.GuestAgent.Tests.Store;

/// <summary>
/// The store owner on real files in a temporary state directory, with real merges (the agent's
/// merge code and the background merges): pins keep a checkpoint and its base chain as they are
/// until released, and retention follows each checkpoint's real base chain.
/// </summary>
public sealed class CheckpointKeeperTests : IAsyncLifetime
{
    private const string Group = "web";
    private readonly string _stateDir = Path.Combine("/tmp", "uskeep-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly RecordingEvents _events = new();
    private readonly SimulatedProcess _process = new(2, "db");
    private CheckpointStore _store = null!;
    private CheckpointKeeper _keeper = null!;
    private BackgroundMerges _merges = null!;

    public Task InitializeAsync()
    {
        _store = new CheckpointStore(_stateDir);
        var merger = new CheckpointMerger(_store, new MergeFaults(setting: null), TimeProvider.System, NullLogger<CheckpointMerger>.Instance);
        _keeper = new CheckpointKeeper(_store, merger, _events, NullLogger<CheckpointKeeper>.Instance);
        _merges = new BackgroundMerges(_keeper, Options.Create(new AgentOptions { BackgroundMerges = true }), NullLogger<BackgroundMerges>.Instance);
        _process.SetPages(8);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _merges.StopAsync(CancellationToken.None);
        _merges.Dispose();
        Directory.Delete(_stateDir, recursive: true);
    }

    [Fact]
    public async Task A_pinned_checkpoint_and_its_base_chain_survive_retention_and_background_merges_and_go_once_released()
    {
        Take();                    // 1: full
        Take(onBase: 1, touch: 1); // 2: incremental on 1
        Take(onBase: 2, touch: 2); // 3: incremental on 2
        var pin = _keeper.Pin(Group, "000003");
        Assert.Equal(["000001", "000002", "000003"], pin.ChainIds);
        var pinned = Snapshot("000001", "000002", "000003");
        Take();                    // 4: full
        Take(onBase: 4, touch: 3); // 5: incremental on 4

        // Merges of 2 and 3 were asked for at their commits; they would rewrite the pinned chain.
        await _merges.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => IsMerged("000005"), "checkpoint 5, queued after 2 and 3, is merged");
        _keeper.ApplyRetention(Group, keep: 1);

        // 4 goes (at once, or when the merge of 5 no longer reads it); the pinned chain stays as it was.
        await Eventually.TrueAsync(() => _events.Deleted.Count > 0, "retention deleted a checkpoint");
        Assert.Equal(["000004"], _events.Deleted.SelectMany(d => d.Ids));
        Assert.Equal(["000001", "000002", "000003", "000005"], Ids());
        Assert.Equal(pinned, Snapshot("000001", "000002", "000003"));

        pin.Dispose();

        await Eventually.TrueAsync(
            () => _events.Deleted.SelectMany(d => d.Ids).Count() == 4, "the released chain is deleted by the retention it escaped");
        Assert.Equal(["000001", "000002", "000003", "000004"], _events.Deleted.SelectMany(d => d.Ids).Order());
        Assert.Equal(["000005"], Ids());
        _store.Verify(Group, "000005");
    }

    [Fact]
    public void What_a_node_lacks_of_a_chain_ends_at_each_checkpoint_it_holds()
    {
        Take();                    // 1: full
        Take(onBase: 1, touch: 1); // 2: incremental on 1
        Take(onBase: 2, touch: 2); // 3: incremental on 2
        Take(onBase: 3, touch: 3); // 4: incremental on 3

        long[] Lacking(params long[] held) => [.. CheckpointChains.Lacking(_store, Group, 4, seq => held.Contains(seq)).Order()];

        Assert.Equal([1L, 2, 3, 4], Lacking());
        Assert.Equal([3L, 4], Lacking(2));
        // A node that holds 3 (merged there, say, and without 1 and 2 any more) lacks only 4.
        Assert.Equal([4L], Lacking(3));
        Assert.Equal([4L], Lacking(1, 3));
        Assert.Empty(Lacking(4));
    }

    // A merge rewrites only its own checkpoint: it reads a pinned chain below it at once (before,
    // it merged each unmerged base first, and so waited for their pins); the merge of a pinned
    // checkpoint is deferred, and asked for again when the pin is released.
    [Fact]
    public async Task A_merge_reads_a_pinned_base_at_once_and_the_merge_of_a_pinned_checkpoint_waits_for_the_release()
    {
        Take();                    // 1: full
        Take(onBase: 1, touch: 1); // 2: incremental on 1
        Take(onBase: 2, touch: 2); // 3: incremental on 2
        using (_keeper.Pin(Group, "000002"))
        {
            var pinned = Snapshot("000001", "000002");
            _keeper.MergeInBackground(Group, g => new MergeRequest(g, "000003", "test"), CancellationToken.None);
            Assert.True(IsMerged("000003"));
            Assert.False(IsMerged("000002"));
            Assert.Equal(pinned, Snapshot("000001", "000002"));
        }

        Take(onBase: 3, touch: 3); // 4: incremental on 3, which is full now
        var asked = new List<MergeRequest>();
        using (_keeper.Pin(Group, "000004"))
        {
            _keeper.MergeInBackground(Group, g => new MergeRequest(g, "000004", "test"), CancellationToken.None);
            Assert.False(IsMerged("000004"));
            _keeper.MergeWanted += asked.Add;
        }
        Assert.Contains(asked, r => r.Id == "000004");

        await _merges.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => IsMerged("000004") && IsMerged("000002"), "the deferred merges ran once the pins were released");
        foreach (var id in new[] { "000002", "000003", "000004" })
        {
            var manifest = _store.Verify(Group, id);
            Assert.Equal(_process.PagesAt(CheckpointId.Parse(id)), FullImagePages.Read(ImageFiles.Of(_store.CheckpointDir(Group, id), Assert.Single(manifest.Members))));
        }
    }

    [Fact]
    public async Task A_restore_merge_of_a_pinned_chain_waits_for_the_release()
    {
        Take();
        Take(onBase: 1, touch: 1);
        var pin = _keeper.Pin(Group, "000002");

        var merge = _keeper.MergeForRestoreAsync(Group, "000002", CancellationToken.None);
        await Task.Delay(200);
        Assert.False(merge.IsCompleted);
        Assert.False(IsMerged("000002"));

        pin.Dispose();
        Assert.True(await merge.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(IsMerged("000002"));
    }

    [Fact]
    public void Retention_keeps_the_base_of_an_incremental_checkpoint_taken_after_a_restore()
    {
        Take(); // 1
        Take(); // 2
        Take(); // 3
        // The group was restored from checkpoint 2: its processes descend from it, so the next
        // checkpoint is an increment on 2, although 3 is newer and full.
        Take(onBase: 2, touch: 5); // 4

        _keeper.ApplyRetention(Group, keep: 2);

        Assert.Equal(["000002", "000003", "000004"], Ids());
        Assert.Equal(["000001"], Assert.Single(_events.Deleted).Ids);
        _store.Verify(Group, "000004");
    }

    [Fact]
    public async Task Retention_follows_the_base_chain_of_every_kept_checkpoint_and_not_merged_ones_bases()
    {
        Take();                    // 1: full
        Take(onBase: 1, touch: 1); // 2: incremental on 1
        Take(onBase: 2, touch: 2); // 3: incremental on 2
        Take();                    // 4: full

        _keeper.ApplyRetention(Group, keep: 2);
        Assert.Equal(["000001", "000002", "000003", "000004"], Ids());

        Assert.True(await _keeper.MergeForRestoreAsync(Group, "000003", CancellationToken.None));
        _keeper.ApplyRetention(Group, keep: 2);
        Assert.Equal(["000003", "000004"], Ids());
    }

    /// <summary>A checkpoint of the process: full, or incremental on <paramref name="onBase"/> after writing page <paramref name="touch"/>.</summary>
    private void Take(long onBase = 0, int? touch = null)
    {
        if (touch is { } page)
        {
            _process.Touch(page);
        }
        using var staged = _keeper.BeginCheckpoint(Group);
        _process.WriteImage(staged.Directory, staged.Seq, onBase);
        var member = ManifestMember.FromFiles(staged.Directory, _process.Vpid, 1, _process.App, 0);
        staged.Commit(CheckpointManifest.Create(Group, staged.Seq, DateTime.UtcNow, [member]));
    }

    private string[] Ids() => [.. _store.List(Group).Select(c => c.Id)];

    private bool IsMerged(string id) => _store.LoadManifest(Group, id).Merged is not null;

    /// <summary>Every file of the checkpoints, with its contents.</summary>
    private SortedDictionary<string, string> Snapshot(params string[] ids)
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            foreach (var file in Directory.EnumerateFiles(_store.CheckpointDir(Group, id)))
            {
                files[$"{id}/{Path.GetFileName(file)}"] = Convert.ToHexString(File.ReadAllBytes(file));
            }
        }
        return files;
    }

    private sealed class RecordingEvents : IEventPublisher
    {
        private readonly List<CheckpointsDeleted> _deleted = [];

        public IReadOnlyList<CheckpointsDeleted> Deleted
        {
            get { lock (_deleted) { return [.. _deleted]; } }
        }

        public void Publish(AgentEvent agentEvent)
        {
            if (agentEvent is CheckpointsDeleted deleted)
            {
                lock (_deleted)
                {
                    _deleted.Add(deleted);
                }
            }
        }
    }
}
