using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Cluster;

/// <summary>
/// The credentials of a cluster in a directory: a CA (ca.crt, and ca.key, which signs the nodes)
/// and, per node, a key and a certificate the CA signed, whose common name is the node's name.
/// Every agent of the cluster gets ca.crt and its own NODE.crt and NODE.key
/// (<c>--cluster DIR --node NODE</c>); agents accept only each other. The directory is 0700 and
/// keys are 0600. <c>hactl cluster init</c> and <c>hactl lab up</c> make them here.
/// </summary>
public static class ClusterAuthority
{
    private static readonly TimeSpan Validity = TimeSpan.FromDays(3650);
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Public = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const string What = "cannot create the cluster credentials";

    public static string CaCertificate(string directory) => Path.Combine(directory, "ca.crt");

    /// <summary>Whether <paramref name="directory"/> holds a whole cluster (ca.crt is written last).</summary>
    public static bool Exists(string directory) => File.Exists(CaCertificate(directory));

    /// <summary>A new cluster in <paramref name="directory"/> (created 0700), which must not hold one yet.</summary>
    /// <exception cref="HactlException">it holds a cluster already, or a file cannot be written; one line.</exception>
    public static void Create(string directory, IReadOnlyList<string> nodes)
    {
        if (Exists(directory))
        {
            throw new HactlException(What, $"{directory} holds a cluster already (ca.crt)", "choose another directory; its credentials are left as they are");
        }

        Write(directory, () =>
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var now = DateTimeOffset.UtcNow.AddMinutes(-5);
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caRequest = new CertificateRequest($"CN=Understudy cluster CA {Guid.NewGuid():N}", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
            using var ca = caRequest.CreateSelfSigned(now, now + Validity);
            WritePem(Path.Combine(directory, "ca.key"), caKey.ExportPkcs8PrivateKeyPem(), Private);
            foreach (var node in nodes)
            {
                Issue(directory, ca, node);
            }

            // Last: a directory with ca.crt is a whole cluster.
            WritePem(CaCertificate(directory), ca.ExportCertificatePem(), Public);
        });
    }

    /// <summary>
    /// The cluster in <paramref name="directory"/> for <paramref name="nodes"/>: created if there is
    /// none; a node that has no certificate yet gets one signed by its CA (ca.key). Nodes it has
    /// are left as they are.
    /// </summary>
    /// <returns>the nodes whose credentials were made now</returns>
    public static IReadOnlyList<string> Ensure(string directory, IReadOnlyList<string> nodes)
    {
        if (!Exists(directory))
        {
            Create(directory, nodes);
            return nodes;
        }

        var missing = nodes.Where(n => !File.Exists(Path.Combine(directory, n + ".crt")) || !File.Exists(Path.Combine(directory, n + ".key"))).ToList();
        if (missing.Count > 0)
        {
            Write(directory, () =>
            {
                using var ca = X509Certificate2.CreateFromPemFile(CaCertificate(directory), Path.Combine(directory, "ca.key"));
                foreach (var node in missing)
                {
                    File.Delete(Path.Combine(directory, node + ".crt"));
                    File.Delete(Path.Combine(directory, node + ".key"));
                    Issue(directory, ca, node);
                }
            });
        }

        return missing;
    }

    private static void Issue(string directory, X509Certificate2 ca, string node)
    {
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={node}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client authentication
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(node);
        request.CertificateExtensions.Add(san.Build());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        var notAfter = now + Validity < ca.NotAfter ? now + Validity : new DateTimeOffset(ca.NotAfter.ToUniversalTime());
        using var certificate = request.Create(ca, now, notAfter, serial);
        WritePem(Path.Combine(directory, node + ".key"), key.ExportPkcs8PrivateKeyPem(), Private);
        WritePem(Path.Combine(directory, node + ".crt"), certificate.ExportCertificatePem(), Public);
    }

    private static void Write(string directory, Action write)
    {
        try
        {
            write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new HactlException(What, $"writing in {directory} failed: {e.Message}", "check the directory and its permissions");
        }
    }

    private static void WritePem(string path, string pem, UnixFileMode mode)
    {
        using (var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(pem);
            writer.Write('\n');
        }
        File.SetUnixFileMode(path, mode);
    }
}
