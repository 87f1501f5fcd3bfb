using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Cluster;

/// <summary>
/// TLS on the cluster's remoting port (Akka.Remote's DotNetty transport), with mutual authentication: every member and
/// client presents its certificate (a PKCS#12 file with its key) and accepts only peers whose certificate chains to a
/// trusted authority (the system's store, or the bundle named by SSL_CERT_FILE). Addresses become <c>akka.ssl.tcp://</c>.
/// <code>
///   CHUNKSEG_CLUSTER_TLS_CERT=/secrets/node.pfx       the certificate and key (EKU serverAuth and clientAuth)
///   CHUNKSEG_CLUSTER_TLS_PASSWORD[_FILE]=…             its password, from the environment or a mounted file
/// </code>
/// Off when CHUNKSEG_CLUSTER_TLS_CERT is unset; a cluster is all TLS or all plain (a plain member cannot join a TLS one).
/// </summary>
public sealed record ClusterTls(string CertificatePath, string Password)
{
    public const string CertificateVariable = "CHUNKSEG_CLUSTER_TLS_CERT", PasswordVariable = "CHUNKSEG_CLUSTER_TLS_PASSWORD";

    public static ClusterTls? FromEnvironment(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (environment(CertificateVariable) is not { Length: > 0 } path) return null;
        if (!File.Exists(path)) throw new UsageException($"{CertificateVariable}={path}: no such certificate file");
        string password = environment(PasswordVariable + "_FILE") is { Length: > 0 } file
            ? ReadSecret(file)
            : environment(PasswordVariable) ?? "";
        return new ClusterTls(Path.GetFullPath(path), password);
    }

    /// <summary>The address scheme of a cluster with or without TLS.</summary>
    public static string Scheme(ClusterTls? tls) => tls is null ? "akka.tcp" : "akka.ssl.tcp";

    /// <summary>The transport's settings (HOCON, under akka.remote.dot-netty.tcp); empty without TLS.</summary>
    public static string Hocon(ClusterTls? tls) => tls is null ? "" : $$"""
        akka.remote.dot-netty.tcp {
          enable-ssl = true
          ssl {
            suppress-validation = false
            require-mutual-authentication = true
            certificate {
              path = {{ClusterSettings.Quote(tls.CertificatePath)}}
              password = {{ClusterSettings.Quote(tls.Password)}}
              flags = ["default-key-set"]
            }
          }
        }
        """;

    private static string ReadSecret(string file)
    {
        try { return File.ReadAllText(file).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{PasswordVariable}_FILE={file}: cannot read the certificate password ({e.Message})");
        }
    }
}
