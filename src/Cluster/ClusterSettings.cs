using System.Globalization;
using System.Net;
using System.Text;
using Akka.Configuration;
using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Cluster;

/// <summary>
/// A member's place in the cluster: its roles, the address others reach it at, the seeds it joins through, and TLS on
/// the remoting port when <see cref="Tls"/> is set.
/// </summary>
public sealed record ClusterSettings(IReadOnlyList<string> Roles, string Hostname, int Port, IReadOnlyList<DnsEndPoint> Seeds, ClusterTls? Tls = null)
{
    public const string SystemName = "chunkseg", CoordinatorRole = "coordinator", GpuNodeRole = "gpu-node";
    public const string SeedsVariable = "CHUNKSEG_SEEDS", SecretVariable = "CHUNKSEG_CLUSTER_SECRET";
    public const int DefaultPort = 4053;

    /// <summary>
    /// Failure handling, measured on loopback with SIGKILLed members (docs/distributed.md): a member silent for 3 s is
    /// unreachable, the Split Brain Resolver downs it once the view is stable for 3 s, and sharding re-homes its shards
    /// 1 s after removal. Chunks held by an unreachable node are sent elsewhere at once, without waiting for the downing.
    /// The resolver keeps the side of the oldest member (the first coordinator started), and downs that member when it
    /// alone is unreachable: so losing many gpu-nodes at once never takes the coordinator down (keep-majority would), and
    /// losing the active coordinator hands its singleton to the standby. (Not restricted to the coordinator role: with
    /// two coordinators a lost one is never "alone" among its role, and the survivors would down themselves.)
    /// </summary>
    public static readonly TimeSpan HeartbeatPause = TimeSpan.FromSeconds(3), StableAfter = TimeSpan.FromSeconds(3), DownRemovalMargin = TimeSpan.FromSeconds(1);

    /// <summary>The seeds from --seed HOST:PORT (repeatable) or, when none is given, $CHUNKSEG_SEEDS (h:p,h:p).</summary>
    public static IReadOnlyList<DnsEndPoint> ParseSeeds(IReadOnlyList<string>? options, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var texts = options is { Count: > 0 }
            ? options
            : (environment(SeedsVariable) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (texts.Count == 0)
            throw new UsageException($"--seed: no seed node given; pass --seed HOST:PORT (repeatable) or set {SeedsVariable}=HOST:PORT,HOST:PORT");
        return texts.Select(ParseEndpoint).ToList();
    }

    public static DnsEndPoint ParseEndpoint(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            throw new UsageException($"--seed {text}: expected HOST:PORT (for example coordinator-0.chunkseg-coordinator:{DefaultPort})");
        return new DnsEndPoint(text[..colon], port);
    }

    /// <summary>
    /// The shared secret that authorises submit, cancel, leave and down: $CHUNKSEG_CLUSTER_SECRET, or the file named by
    /// $CHUNKSEG_CLUSTER_SECRET_FILE (a mounted secret); null when neither is set. Never from the command line.
    /// </summary>
    public static byte[]? Secret(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (environment(SecretVariable + "_FILE") is { Length: > 0 } file)
        {
            string text;
            try { text = File.ReadAllText(file).Trim(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"{SecretVariable}_FILE={file}: cannot read the cluster secret ({e.Message})");
            }
            if (text.Length == 0) throw new UsageException($"{SecretVariable}_FILE={file}: the file is empty");
            return Encoding.UTF8.GetBytes(text);
        }
        return environment(SecretVariable) is { Length: > 0 } value ? Encoding.UTF8.GetBytes(value) : null;
    }

    /// <summary>The configuration of a member (provider cluster) with these settings.</summary>
    public Config ToConfig()
    {
        var ci = CultureInfo.InvariantCulture;
        string seeds = string.Join(", ", Seeds.Select(s => Quote($"{ClusterTls.Scheme(Tls)}://{SystemName}@{s.Host}:{s.Port}")));
        string roles = string.Join(", ", Roles.Select(Quote));
        return ConfigurationFactory.ParseString($$"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = {{Quote(Hostname)}}
            akka.remote.dot-netty.tcp.port = {{Port.ToString(ci)}}
            akka.cluster {
              roles = [{{roles}}]
              seed-nodes = [{{seeds}}]
              seed-node-timeout = 3s
              min-nr-of-members = 1
              downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
              split-brain-resolver {
                active-strategy = keep-oldest
                keep-oldest.down-if-alone = on
                stable-after = {{StableAfter.TotalSeconds.ToString(ci)}}s
              }
              down-removal-margin = {{DownRemovalMargin.TotalSeconds.ToString(ci)}}s
              failure-detector.acceptable-heartbeat-pause = {{HeartbeatPause.TotalSeconds.ToString(ci)}}s
              sharding {
                remember-entities = off
                rebalance-interval = 2s
                least-shard-allocation-strategy.rebalance-absolute-limit = 32
                least-shard-allocation-strategy.rebalance-relative-limit = 0.5
                handoff-timeout = 60s
                passivate-idle-entity-after = 120s
                retry-interval = 1s
                shard-start-timeout = 5s
              }
              # No role here: sharding's own coordinator singleton reads these settings too, and must run on the member its
              # regions look for (the oldest). The job manager's role is set where it is started.
              singleton.hand-over-retry-interval = 500ms
              singleton-proxy {
                singleton-identification-interval = 500ms
                buffer-size = 10000
              }
            }
            """).WithFallback(ConfigurationFactory.ParseString(ClusterTls.Hocon(Tls))).WithFallback(CommonConfig());
    }

    /// <summary>The configuration of a client (provider remote): it reaches the cluster through a receptionist.</summary>
    public static Config ClientConfig(string hostname, IReadOnlyList<DnsEndPoint> seeds, ClusterTls? tls)
    {
        string contacts = string.Join(", ", seeds.Select(s => Quote($"{ClusterTls.Scheme(tls)}://{SystemName}@{s.Host}:{s.Port}/system/receptionist")));
        return ConfigurationFactory.ParseString($$"""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp.hostname = {{Quote(hostname)}}
            akka.remote.dot-netty.tcp.port = 0
            akka.cluster.client {
              initial-contacts = [{{contacts}}]
              establishing-get-contacts-interval = 1s
              reconnect-timeout = 15s
            }
            """).WithFallback(ConfigurationFactory.ParseString(ClusterTls.Hocon(tls))).WithFallback(CommonConfig());
    }

    /// <summary>
    /// What members and clients share: the wire format (<see cref="WireSerializer"/> for ChunkSeg's messages, never
    /// type-name JSON), the frame size, logging through the process's logger at warnings and above.
    /// </summary>
    private static Config CommonConfig() => ConfigurationFactory.ParseString($$"""
        akka {
          loglevel = WARNING
          stdout-loglevel = WARNING
          log-dead-letters = 0
          log-dead-letters-during-shutdown = off
          actor {
            serializers.chunkseg = "{{typeof(WireSerializer).AssemblyQualifiedName!.Split(", Version")[0]}}"
            serialization-bindings {
              "ChunkSeg.Contracts.Messages.IClusterMessage, ChunkSeg.Contracts" = chunkseg
            }
          }
          remote.dot-netty.tcp.maximum-frame-size = 128000b
          coordinated-shutdown.run-by-clr-shutdown-hook = off
          coordinated-shutdown.exit-clr = off
          coordinated-shutdown.phases.before-cluster-shutdown.timeout = 610s
        }
        """);

    internal static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
