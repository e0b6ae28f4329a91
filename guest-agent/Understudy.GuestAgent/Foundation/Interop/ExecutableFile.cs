using System.Buffers.Binary;
using System.Text;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>How the kernel would start an executable file, from its first bytes.</summary>
internal enum ExecutableKind
{
    /// <summary>Not readable, or neither ELF nor a script: exec decides.</summary>
    Unknown,

    /// <summary>A "#!" script: its interpreter is what runs.</summary>
    Script,

    /// <summary>An ELF program with a dynamic loader (PT_INTERP): LD_PRELOAD reaches it.</summary>
    Dynamic,

    /// <summary>An ELF program without a dynamic loader (static, or static-pie): nothing preloads into it.</summary>
    Static,
}

/// <summary>What an executable file is; for a script, the interpreter its "#!" line names.</summary>
internal readonly record struct Executable(ExecutableKind Kind, string? Interpreter = null)
{
    private const uint PtInterp = 3;
    private const int HeaderBytes = 4096;

    /// <summary>Reads the file's ELF header and program headers, or its "#!" line.</summary>
    public static Executable Inspect(string path)
    {
        byte[] head;
        try
        {
            using var file = File.OpenRead(path);
            head = new byte[HeaderBytes];
            head = head[..file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
            if (head.Length >= 2 && head[0] == '#' && head[1] == '!')
            {
                return Script(head);
            }
            return head.Length >= 64 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F'
                ? Elf(file, head)
                : new Executable(ExecutableKind.Unknown);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return new Executable(ExecutableKind.Unknown);
        }
    }

    private static Executable Script(byte[] head)
    {
        var end = Array.IndexOf(head, (byte)'\n');
        var line = Encoding.UTF8.GetString(head, 2, (end < 0 ? head.Length : end) - 2).Trim();
        var interpreter = line.Split([' ', '\t'], 2, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return interpreter is null ? new Executable(ExecutableKind.Unknown) : new Executable(ExecutableKind.Script, interpreter);
    }

    private static Executable Elf(FileStream file, byte[] head)
    {
        bool is64 = head[4] == 2, little = head[5] == 1;
        ulong phoff = is64 ? Read(head, 0x20, 8, little) : Read(head, 0x1c, 4, little);
        int phentsize = (int)Read(head, is64 ? 0x36 : 0x2a, 2, little), phnum = (int)Read(head, is64 ? 0x38 : 0x2c, 2, little);
        if (phentsize < 4 || phnum == 0 || phoff > (ulong)file.Length)
        {
            return new Executable(ExecutableKind.Unknown);
        }
        var table = new byte[phentsize * phnum];
        file.Position = (long)phoff;
        if (file.ReadAtLeast(table, table.Length, throwOnEndOfStream: false) < table.Length)
        {
            return new Executable(ExecutableKind.Unknown);
        }
        for (int i = 0; i < phnum; i++)
        {
            if (Read(table, i * phentsize, 4, little) == PtInterp)
            {
                return new Executable(ExecutableKind.Dynamic);
            }
        }
        return new Executable(ExecutableKind.Static);
    }

    private static ulong Read(byte[] b, int at, int size, bool little)
    {
        var span = b.AsSpan(at, size);
        return size switch
        {
            2 => little ? BinaryPrimitives.ReadUInt16LittleEndian(span) : BinaryPrimitives.ReadUInt16BigEndian(span),
            4 => little ? BinaryPrimitives.ReadUInt32LittleEndian(span) : BinaryPrimitives.ReadUInt32BigEndian(span),
            _ => little ? BinaryPrimitives.ReadUInt64LittleEndian(span) : BinaryPrimitives.ReadUInt64BigEndian(span),
        };
    }
}
