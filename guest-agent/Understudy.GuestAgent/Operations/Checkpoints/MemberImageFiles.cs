using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Understudy.GuestAgent.Model.Members;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// The image files of each member of one checkpoint, <c>&lt;vpid&gt;.meta</c> and
/// <c>&lt;vpid&gt;.pages</c> in the staging directory, created by the agent (0600, its own user)
/// and sent open with WRITE: a member that dropped its privileges could not create them in the
/// agent's private directory. The agent's descriptors are closed once WRITE went out; the
/// member's stay open until its image is written.
/// </summary>
internal sealed class MemberImageFiles : IDisposable
{
    private readonly string _stagingDir;
    private readonly Dictionary<Member, SafeHandle[]> _files = [];
    private readonly List<string> _names = [];

    public MemberImageFiles(string stagingDir, IEnumerable<Member> members)
    {
        _stagingDir = stagingDir;
        try
        {
            foreach (var member in members)
            {
                string meta = $"{member.Vpid}.meta", pages = $"{member.Vpid}.pages";
                _files[member] = [Create(stagingDir, meta), Create(stagingDir, pages)];
                _names.AddRange([meta, pages]);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<SafeHandle> For(Member member) => _files[member];

    /// <summary>A member left out of the checkpoint (it exited before it froze): its files go, still empty.</summary>
    public void Drop(Member member)
    {
        if (!_files.Remove(member, out var handles))
        {
            return;
        }
        foreach (var handle in handles)
        {
            handle.Dispose();
        }
        foreach (var name in new[] { $"{member.Vpid}.meta", $"{member.Vpid}.pages" })
        {
            _names.Remove(name);
            File.Delete(Path.Combine(_stagingDir, name));
        }
    }

    /// <summary>The names of all the files, by member: .meta then .pages.</summary>
    public IReadOnlyList<string> Names => _names;

    public void Dispose()
    {
        foreach (var handle in _files.Values.SelectMany(h => h))
        {
            handle.Dispose();
        }
        _files.Clear();
    }

    private static SafeFileHandle Create(string dir, string name)
    {
        // CreateNew: O_CREAT | O_EXCL, which never follows a link. FileShare.ReadWrite: no flock
        // on a file the member writes and the agent later reads. 0600 as soon as it exists, in a
        // directory only the agent's user can enter.
        var handle = File.OpenHandle(Path.Combine(dir, name), FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
        try
        {
            File.SetUnixFileMode(handle, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
