namespace Understudy.Hactl.Commands;

/// <summary>What a lab command needs of DIR: <c>down</c> also cleans up after a lab whose directory was removed.</summary>
internal enum LabDir
{
    Create,
    MustExist,
    MayBeGone,
}
