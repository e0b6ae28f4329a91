using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Foundation.Peers;

/// <summary>
/// The credentials that make a node a member of its cluster (hactl cluster init): the cluster's
/// CA certificate (DIR/ca.crt) and this node's certificate and key, signed by it (DIR/NODE.crt,
/// DIR/NODE.key). Both ends of every agent-to-agent connection show their certificate and check
/// the other's: signed by this CA, and, for the node called, carrying the name it was called by.
/// </summary>
internal sealed class ClusterCredentials : IDisposable
{
    private ClusterCredentials(string node, X509Certificate2 authority, X509Certificate2 own)
    {
        Node = node;
        Authority = authority;
        Own = own;
    }

    public string Node { get; }

    public X509Certificate2 Authority { get; }

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Own { get; }

    /// <exception cref="AgentException">FailedPrecondition: a file is missing, unreadable or not what it should be; one line.</exception>
    public static ClusterCredentials Load(string directory, string node)
    {
        var caPath = Path.Combine(directory, "ca.crt");
        var certPath = Path.Combine(directory, node + ".crt");
        var keyPath = Path.Combine(directory, node + ".key");
        try
        {
            var authority = X509CertificateLoader.LoadCertificateFromFile(caPath);
            if ((File.GetUnixFileMode(keyPath) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
            {
                throw AgentException.FailedPrecondition(
                    $"the node's key {keyPath} is readable by other users; make it private: chmod 600 {keyPath}");
            }
            using var pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            // The key from a PEM file is ephemeral; TLS needs it exportable into a real store on some platforms.
            var own = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            var credentials = new ClusterCredentials(node, authority, own);
            if (credentials.Problem(own, node) is { } problem)
            {
                throw AgentException.FailedPrecondition($"the node's certificate {certPath} is not usable: {problem}; create it again with hactl cluster init");
            }
            return credentials;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw AgentException.FailedPrecondition(
                $"cannot load the cluster credentials of node {node} from {directory}: {AgentException.OneLine(e.Message)}; " +
                "create them with hactl cluster init DIR --nodes NAMES and pass --cluster DIR --node NAME");
        }
    }

    /// <summary>Why <paramref name="certificate"/> is not a node of this cluster (or not <paramref name="expectedNode"/>), or null.</summary>
    public string? Problem(X509Certificate? certificate, string? expectedNode)
    {
        if (certificate is null)
        {
            return "it showed no certificate";
        }
        using var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (!chain.Build(presented))
        {
            var status = chain.ChainStatus.Select(s => s.StatusInformation.Trim()).FirstOrDefault(s => s.Length > 0) ?? "the chain does not build";
            return $"its certificate ({presented.Subject}) is not signed by this cluster's CA: {status}";
        }
        var name = presented.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        if (expectedNode is not null && name != expectedNode)
        {
            return $"its certificate names node '{name}', not '{expectedNode}'";
        }
        return null;
    }

    /// <summary>The node name a validated certificate carries.</summary>
    public static string NodeOf(X509Certificate certificate)
    {
        using var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return presented.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
    }

    /// <summary>TLS options of a connection to <paramref name="peer"/>: this node's certificate, and the peer's checked.</summary>
    public SslClientAuthenticationOptions ClientOptions(string peer, Action<string> refused) => new()
    {
        TargetHost = peer,
        ClientCertificates = [Own],
        EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (Problem(certificate, peer) is { } problem)
            {
                refused(problem);
                return false;
            }
            return true;
        },
    };

    public void Dispose()
    {
        Authority.Dispose();
        Own.Dispose();
    }
}
