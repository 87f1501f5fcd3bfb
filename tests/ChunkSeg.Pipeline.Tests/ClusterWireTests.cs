using System.Text;
using ChunkSeg.Cluster;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>The cluster's wire format (versioned manifests over JSON), the signed requests, and the members' settings.</summary>
public sealed class ClusterWireTests
{
    private static readonly JobSpec Job = new(new JobId("abc123"), "label", "/store/raw.zarr", "/store/out/labels.zarr", new Long3(64, 32, 16), new Halo(3, 2, 1),
        new Dictionary<string, string> { ["run.spec"] = "{\"input\":\"/store/raw.zarr\"}" });

    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    public static TheoryData<IClusterMessage> Messages => new()
    {
        new ChunkWork(Job, 17, 2, 40, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k=v"),
        new ChunkAccepted("abc123", 17, 2, 40, "n1"),
        new ChunkRejected("abc123", 17, 2, 40, "n1", "draining"),
        new ChunkResult("n1", new ChunkCompleted(Job.Id, new ChunkId(17), 2, 32768, 0xDEADBEEF, TimeSpan.FromMilliseconds(1234.5), "n1"), null),
        new ChunkResult("n1", null, new ChunkFailed(Job.Id, new ChunkId(17), 2, "I/O error: disk full", Retryable: true, "n1")),
        new NodeHeartbeat("n1", "akka.tcp://chunkseg@10.0.0.5:4053", "gpu-7", 42, "gpu", "NVIDIA H100", 4, 3, 5, 1000, 2, 1L << 33, false, Now),
        new SubmitJob("20261206-120000-abcdef", "{\"input\":\"/store/raw.zarr\"}", "/store/out", Now, new ClusterAuth("00ff", 1765022400, "ab")),
        new CancelJob("j", null),
        new GetClusterStatus(null),
        new ChangeMember("10.0.0.5:4053", Down: true, null),
        new GetClusterView(),
        new ClusterReply(false, "refused"),
        new ClusterStatus("akka.tcp://chunkseg@c0:4053", [new JobStatus("j", "running", "/out", "classify + label", 3, 10, Now, Now, null, null, ["chunk 3: x"])],
            [], [new NodeLoad("n1", 3, 8, 12)], "note"),
        new ClusterView("self", null, [new MemberView("a", "Up", ["gpu-node"], true)], [new RegionView("a", new Dictionary<string, int> { ["3"] = 2 })]),
        new ClusterStatus("akka.tcp://chunkseg@c0:4053", [new JobStatus("j", "running", "/out", "classify + label", 3, 10, Now, Now, null, null, [],
            [new PassStatus(0, "p0", "label", "running", 3, 10, 2, 1, 1, 3000, 10000, 2.5, 800, 8.75, [1, 2, 2, 3],
                [new ChunkFailure(5, 1, "n2", "drill", Now, Retried: true)], [new ChunkResend(7, "n1 is unreachable", Now)])])],
            [], [new NodeLoad("n1", 0, 8, 0, "gone")], null, [new NodeHeartbeat("n1", "akka.tcp://chunkseg@10.0.0.5:4053", "gpu-7", 42, "cpu", null, 4, 0, 0, 10, 0, 1L << 30, false, Now)]),
        new GetChunkMap("j", 0, 0, 1),
        new ChunkMap("j", 0, 0, 1, 2, 3, "ddi.rf"),
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_message_round_trips_under_its_manifest(IClusterMessage message)
    {
        string manifest = ClusterWire.ManifestOf(message);
        Assert.EndsWith(".v1", manifest);
        var back = ClusterWire.Decode(ClusterWire.Encode(message), manifest);
        // Records compare by value, except their collections: compare the encodings.
        Assert.Equal(message.GetType(), back.GetType());
        Assert.Equal(Encoding.UTF8.GetString(ClusterWire.Encode(message)), Encoding.UTF8.GetString(ClusterWire.Encode(back)));
    }

    [Fact]
    public void The_wire_names_kinds_not_types_and_refuses_what_it_does_not_know()
    {
        string json = Encoding.UTF8.GetString(ClusterWire.Encode(new ChunkAccepted("abc123", 17, 2, 40, "n1")));
        Assert.Equal("""{"job":"abc123","chunk":17,"attempt":2,"shard":40,"node":"n1"}""", json);
        Assert.DoesNotContain("ChunkSeg", Encoding.UTF8.GetString(ClusterWire.Encode(new ChunkWork(Job, 17, 2, 40, null, null))));
        Assert.Contains("unknown cluster message \"chunk-work.v9\"", Assert.Throws<FormatException>(() => ClusterWire.Decode("{}"u8, "chunk-work.v9")).Message);
        Assert.Contains("not a chunk-accepted.v1", Assert.Throws<FormatException>(() => ClusterWire.Decode("[1,2]"u8, "chunk-accepted.v1")).Message);
        Assert.Throws<ArgumentException>(() => ClusterWire.ManifestOf("not a message"));
        // A field added by a newer member is ignored by an older one (extend-only).
        var accepted = (ChunkAccepted)ClusterWire.Decode("""{"job":"j","chunk":1,"attempt":1,"shard":2,"node":"n","newField":true}"""u8, "chunk-accepted.v1");
        Assert.Equal(new ChunkAccepted("j", 1, 1, 2, "n"), accepted);
    }

    [Fact]
    public void A_signed_request_is_accepted_only_with_the_same_secret_unaltered_and_fresh()
    {
        byte[] secret = Encoding.UTF8.GetBytes("s3cret");
        var submit = new SubmitJob("j1", "{\"input\":\"/a\"}", "/out", Now, null);
        var signed = ClusterWire.Signed(submit, secret, Now);
        Assert.Null(ClusterWire.Verify(signed, secret, Now));
        Assert.Null(ClusterWire.Verify(signed, secret, Now + TimeSpan.FromMinutes(4)));
        // Through the wire, as the coordinator receives it.
        Assert.Null(ClusterWire.Verify((SubmitJob)ClusterWire.Decode(ClusterWire.Encode(signed), "submit-job.v1"), secret, Now));

        Assert.Contains("does not match", ClusterWire.Verify(signed, Encoding.UTF8.GetBytes("other"), Now));
        Assert.Contains("does not match", ClusterWire.Verify(signed with { Output = "/elsewhere" }, secret, Now));
        Assert.Contains("not signed", ClusterWire.Verify(submit, secret, Now));
        Assert.Contains("more than 5 minutes", ClusterWire.Verify(signed, secret, Now + TimeSpan.FromMinutes(6)));
        Assert.Contains("has no cluster secret", ClusterWire.Verify(signed, null, Now));
        // A signature is bound to its kind of request: a signed cancel does not sign a down.
        var cancel = ClusterWire.Signed(new CancelJob("j1", null), secret, Now);
        Assert.Null(ClusterWire.Verify(cancel, secret, Now));
        Assert.Contains("does not match", ClusterWire.Verify(new ChangeMember("j1", false, cancel.Auth), secret, Now));
    }

    [Fact]
    public void Seeds_come_from_the_options_or_the_environment_and_the_secret_never_from_the_command_line()
    {
        Assert.Equal(["a:1", "b:2"], ClusterSettings.ParseSeeds(["a:1", "b:2"], _ => "ignored:9").Select(s => $"{s.Host}:{s.Port}"));
        Assert.Equal(["c:3", "d:4"], ClusterSettings.ParseSeeds([], v => v == "CHUNKSEG_SEEDS" ? "c:3, d:4" : null).Select(s => $"{s.Host}:{s.Port}"));
        Assert.Contains("no seed node given", Assert.Throws<UsageException>(() => ClusterSettings.ParseSeeds(null, _ => null)).Message);
        Assert.Contains("expected HOST:PORT", Assert.Throws<UsageException>(() => ClusterSettings.ParseSeeds(["host"], _ => null)).Message);
        Assert.Contains("expected HOST:PORT", Assert.Throws<UsageException>(() => ClusterSettings.ParseSeeds(["host:99999"], _ => null)).Message);

        using var dir = new TempDir();
        string file = dir["secret"];
        File.WriteAllText(file, "from-a-file\n");
        Assert.Equal("from-a-file", Encoding.UTF8.GetString(ClusterSettings.Secret(v => v == "CHUNKSEG_CLUSTER_SECRET_FILE" ? file : "from-env")!));
        Assert.Equal("from-env", Encoding.UTF8.GetString(ClusterSettings.Secret(v => v == "CHUNKSEG_CLUSTER_SECRET" ? "from-env" : null)!));
        Assert.Null(ClusterSettings.Secret(_ => null));
        Assert.Contains("cannot read the cluster secret", Assert.Throws<UsageException>(() =>
            ClusterSettings.Secret(v => v == "CHUNKSEG_CLUSTER_SECRET_FILE" ? dir["missing"] : null)).Message);
    }

    [Fact]
    public void The_member_configuration_holds_the_measured_failure_settings()
    {
        var config = new ClusterSettings(["gpu-node"], "10.0.0.5", 4053, [new System.Net.DnsEndPoint("c0", 4053)]).ToConfig();
        Assert.Equal("cluster", config.GetString("akka.actor.provider"));
        Assert.Equal(["akka.tcp://chunkseg@c0:4053"], config.GetStringList("akka.cluster.seed-nodes"));
        Assert.Equal("keep-oldest", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.True(config.GetBoolean("akka.cluster.split-brain-resolver.keep-oldest.down-if-alone"));
        Assert.Equal(TimeSpan.FromSeconds(3), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(TimeSpan.FromSeconds(3), config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause"));
        Assert.False(config.GetBoolean("akka.cluster.sharding.remember-entities"));
        Assert.Equal("", config.GetString("akka.cluster.sharding.role", ""));
        Assert.Equal("", config.GetString("akka.cluster.singleton.role", ""));
        Assert.Equal("chunkseg", config.GetString("akka.actor.serialization-bindings.\"ChunkSeg.Contracts.Messages.IClusterMessage, ChunkSeg.Contracts\""));
    }
}
