using Understudy.Images;

namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>What a full image holds: every page with data, by address, read and checked from its files.</summary>
internal static class FullImagePages
{
    public static SortedDictionary<ulong, byte[]> Read(ImageFiles files)
    {
        var image = ProcessImage.ReadMeta(files.Meta);
        Assert.Equal(ImageKind.Full, image.Header.Kind);
        var pages = new SortedDictionary<ulong, byte[]>();
        foreach (var run in image.Vmas.SelectMany(v => v.Runs))
        {
            var data = PageRunReader.ReadPages(files.Pages, run);
            for (ulong i = 0; i < run.NPages; i++)
            {
                pages.Add(run.Addr + i * ImageLayout.PageSize, data.AsSpan((int)(i * ImageLayout.PageSize), ImageLayout.PageSize).ToArray());
            }
        }
        return pages;
    }
}
