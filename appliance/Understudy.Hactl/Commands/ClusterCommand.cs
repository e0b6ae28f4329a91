using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Commands;

/// <summary>
/// <c>hactl cluster init DIR</c>: the credentials of a new cluster. A CA (ca.crt, and ca.key to add
/// nodes later) and, per node, a key and a certificate the CA signed, whose common name is the
/// node's name. Every agent of the cluster gets ca.crt and its own NODE.crt and NODE.key
/// (<c>--cluster DIR --node NODE</c>); agents accept only each other. Keys are written 0600.
/// </summary>
public static class ClusterCommand
{
    private static readonly TimeSpan Validity = TimeSpan.FromDays(3650);
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static Command Create()
    {
        var cluster = new Command("cluster", "Credentials of a cluster of nodes (mutual TLS between their agents)");
        cluster.Add(CreateInit());
        return cluster;
    }

    private static Command CreateInit()
    {
        var dir = new Argument<string>("DIR") { Description = "Directory for the credentials (created 0700; it must not hold a cluster yet)" };
        var nodes = new Option<string>("--nodes")
        {
            Description = "The nodes' names, separated by commas",
            HelpName = "NAMES",
            DefaultValueFactory = _ => "node-a,node-b",
        };
        nodes.Validators.Add(result =>
        {
            var names = (result.GetValueOrDefault<string>() ?? "").Split(',', StringSplitOptions.TrimEntries);
            foreach (var name in names)
            {
                if (PeerNode.NameProblem(name) is { } problem)
                {
                    result.AddError($"--nodes: {problem}");
                }
            }
            if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            {
                result.AddError("--nodes names a node twice");
            }
        });
        var init = new Command("init",
            "Create a cluster CA and, for each node, a key and a certificate signed by it: DIR/ca.crt, DIR/NODE.crt, DIR/NODE.key (keys 0600)")
        {
            dir, nodes,
        };
        init.SetHandler((parse, _) =>
        {
            var directory = Path.GetFullPath(parse.GetRequiredValue(dir));
            var names = parse.GetRequiredValue(nodes).Split(',', StringSplitOptions.TrimEntries);
            Init(directory, names);
            Console.WriteLine($"cluster credentials in {directory}: ca.crt, ca.key, and for {string.Join(", ", names)} NODE.crt and NODE.key");
            Console.WriteLine($"run each node's agent with --cluster {directory} --node NODE (copy ca.crt and that node's files alone to a real node)");
            return Task.FromResult(ExitCodes.Ok);
        });
        return init;
    }

    private static void Init(string directory, IReadOnlyList<string> nodes)
    {
        const string what = "cannot create the cluster credentials";
        if (File.Exists(Path.Combine(directory, "ca.crt")))
        {
            throw new HactlException(what, $"{directory} holds a cluster already (ca.crt)", "choose another directory; its credentials are left as they are");
        }
        try
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var now = DateTimeOffset.UtcNow.AddMinutes(-5);
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caRequest = new CertificateRequest($"CN=Understudy cluster CA {Guid.NewGuid():N}", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
            using var ca = caRequest.CreateSelfSigned(now, now + Validity);
            Write(Path.Combine(directory, "ca.key"), caKey.ExportPkcs8PrivateKeyPem(), Private);
            foreach (var node in nodes)
            {
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
                using var certificate = request.Create(ca, now, now + Validity, serial);
                Write(Path.Combine(directory, node + ".key"), key.ExportPkcs8PrivateKeyPem(), Private);
                Write(Path.Combine(directory, node + ".crt"), certificate.ExportCertificatePem(), Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
            // Last: a directory with ca.crt is a whole cluster.
            Write(Path.Combine(directory, "ca.crt"), ca.ExportCertificatePem(), Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new HactlException(what, $"writing in {directory} failed: {e.Message}", "check the directory and its permissions");
        }
    }

    private static void Write(string path, string pem, UnixFileMode mode)
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
