using System.Globalization;

namespace Understudy.Hactl.Output;

/// <summary>Human renderings of sizes, durations and counts.</summary>
public static class Units
{
    private static readonly string[] ByteUnits = ["B", "kB", "MB", "GB", "TB"];

    /// <summary>Decimal units: 268500000 → "268.5 MB".</summary>
    public static string Bytes(long bytes)
    {
        if (bytes < 1000)
        {
            return $"{bytes} B";
        }

        double value = bytes;
        var unit = 0;
        while (value >= 1000 && unit < ByteUnits.Length - 1)
        {
            value /= 1000;
            unit++;
        }
        return value.ToString("0.0", CultureInfo.InvariantCulture) + " " + ByteUnits[unit];
    }

    /// <summary>"41 ms", "3.2 ms", "1.52 s".</summary>
    public static string Millis(double ms) => ms switch
    {
        >= 10_000 => (ms / 1000).ToString("0.0", CultureInfo.InvariantCulture) + " s",
        >= 1_000 => (ms / 1000).ToString("0.00", CultureInfo.InvariantCulture) + " s",
        >= 10 => ms.ToString("0", CultureInfo.InvariantCulture) + " ms",
        _ => ms.ToString("0.0", CultureInfo.InvariantCulture) + " ms",
    };

    /// <summary>"1 member", "3 members".</summary>
    public static string Count(int n, string singular, string? plural = null) =>
        $"{n} {(n == 1 ? singular : plural ?? singular + "s")}";
}
