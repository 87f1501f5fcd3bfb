using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The cluster end to end on this machine: real `chunkseg coordinator` and `chunkseg worker` processes forming an
/// Akka.NET cluster on loopback, a job from `chunkseg submit`. Its outputs must equal the embedded run's, also when a
/// gpu-node is SIGKILLed mid-pass, when the active coordinator is SIGKILLed while a standby runs, when the only
/// coordinator is SIGKILLed and restarted, when a gpu-node joins mid-run and when one is given SIGTERM: equal labels
/// (so equal object counts and voxel totals) and object tables prove no chunk was lost or counted twice; each fault's
/// longest gap between two recorded chunks is printed. Every wait is on progress (chunks recorded, a member heard),
/// never a fixed delay.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class DistributedTests(ITestOutputHelper output) : IDisposable
{
    private const string Secret = "test-cluster-secret";
    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _processes = [];
    private static readonly SemaphoreSlim ReferenceLock = new(1, 1);
    private static string? _reference;

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";
    private static readonly string[] Options = ["--ilp", Ilp3D, "--chunk", "8,16,16", "--min-size", "3"];

    public void Dispose()
    {
        foreach (var p in _processes) p.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Coordinator_and_three_gpu_nodes_equal_the_embedded_run() =>
        await RunCluster("none", async (_, _, _) => await Task.CompletedTask);

    [Fact]
    public async Task A_gpu_node_killed_mid_pass_loses_no_chunk() =>
        await RunCluster("gpu-node SIGKILL", async (cluster, _, recorded) =>
        {
            await Until(() => recorded() > 10, "the job to get going");
            cluster.Nodes[0].Kill();
        });

    [Fact]
    public async Task The_active_coordinator_killed_with_a_standby_running_finishes_without_resubmission() =>
        await RunCluster("active coordinator SIGKILL, standby takes over", async (cluster, _, recorded) =>
        {
            await Until(() => recorded() > 10, "the job to get going");
            cluster.Coordinators[0].Kill();
        }, coordinators: 2);

    [Fact]
    public async Task The_only_coordinator_killed_and_restarted_resumes_the_job() =>
        await RunCluster("only coordinator SIGKILL + restart", async (cluster, _, recorded) =>
        {
            await Until(() => recorded() > 10, "the job to get going");
            cluster.Coordinators[0].Kill();
            cluster.Coordinators[0] = cluster.StartCoordinator(0);
        });

    [Fact]
    public async Task A_gpu_node_joining_mid_run_processes_chunks() =>
        await RunCluster("gpu-node joins", async (cluster, _, recorded) =>
        {
            await Until(() => recorded() > 4, "the job to get going");
            cluster.StartNode("late");
        }, nodes: 1, expectWorker: "late");

    [Fact]
    public async Task A_gpu_node_given_SIGTERM_drains_and_the_job_loses_no_chunk() =>
        await RunCluster("gpu-node SIGTERM", async (cluster, _, recorded) =>
        {
            await Until(() => recorded() > 10, "the job to get going");
            Assert.Equal(0, await cluster.Nodes[0].TerminateAsync(TimeSpan.FromMinutes(2)));
        });

    [Fact]
    public async Task Two_jobs_run_side_by_side_and_each_equals_the_embedded_run()
    {
        string reference = await Reference();
        var cluster = StartCluster(coordinators: 1, nodes: 2, coordinatorArgs: ["--max-jobs", "2"]);
        await cluster.UntilNodes(2);
        string first = await Submit(cluster, _dir["first"], []), second = await Submit(cluster, _dir["second"], []);
        foreach (var job in new[] { first, second }) Assert.Equal("done", (await Finished(cluster, job))["state"]!.GetValue<string>());
        // Side by side: both were started before either ended (the ledger records each change in order).
        var states = File.ReadLines(Path.Combine(_dir["state"], "jobs.jsonl")).Select(l => JsonNode.Parse(l)!["status"]!["state"]!.GetValue<string>()).ToList();
        Assert.True(states.LastIndexOf("running") < states.IndexOf("done"), string.Join(",", states));
        foreach (var outDir in new[] { _dir["first"], _dir["second"] })
        {
            Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
            Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        }
    }

    /// <summary>
    /// `run --split voronoi|distance` on the cluster: the predict pass and every pass of the split (outline, distance,
    /// maxima, flood rounds, labelling, relabelling) run on the gpu-nodes, rebuilt from the run's spec and the jobs'
    /// parameters, and the labels and object table equal the embedded run's.
    /// </summary>
    [Theory]
    [InlineData("voronoi", "--spot-sigma", "1")]
    [InlineData("distance", "--min-distance", "2")]
    public async Task A_split_run_on_the_cluster_equals_the_embedded_split_run(string mode, string option, string value)
    {
        string[] split = ["--split", mode, option, value, "--channel", "1", "--threshold", "0.5", "--min-size", "5", "--chunk", "16,32,32", "--mesh", "none"];
        string reference = _dir[$"split-embedded-{mode}"];
        var (code, _, err) = await Cli.Run(["run", Data3D, "--out", reference, "--ilp", Ilp3D, .. split]);
        Assert.True(code == 0, err);

        var cluster = StartCluster(coordinators: 1, nodes: 2);
        await cluster.UntilNodes(2);
        string outDir = _dir[$"split-distributed-{mode}"];
        var final = await Finished(cluster, await Submit(cluster, outDir, split));
        Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{cluster.Logs()}");
        string[] passes = ["(predict)", "(split-outline)", .. mode == "distance" ? ["(split-distance)"] : (string[])[], "(split-maxima)", "(split-flood)", "(label)", "(relabel)"];
        foreach (var pass in passes)
            Assert.True(cluster.Nodes.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no gpu-node ran a {pass} pass");

        var labels = TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr"));
        Assert.True(labels.Max() >= 2, $"the fixture should hold several objects; it holds {labels.Max()}");
        Assert.Equal(labels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.False(Directory.Exists(Path.Combine(outDir, ".chunkseg-split-probabilities.zarr")), "the scratch probabilities are removed");
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
    }

    /// <summary>
    /// `run --voronoi-otsu --format zarr3 --levels auto` (no classifier) on the cluster: every pass of the split (outline,
    /// maxima, flood rounds, labelling, relabelling), the pyramid's levels and the mesh's run on the gpu-nodes, which find each time point's outline range and Otsu
    /// cut from the run's workspace as the coordinator does; labels, object table and mesh equal the embedded run's.
    /// </summary>
    [Fact]
    public async Task A_voronoi_otsu_run_on_the_cluster_equals_the_embedded_run()
    {
        // Sharded OME-NGFF 0.5 outputs with a pyramid: the level passes go to the gpu-nodes too.
        string[] voronoiOtsu = ["--voronoi-otsu", "2,1", "--min-size", "5", "--chunk", "16,32,32", "--chunks", "16,16,16", "--format", "zarr3", "--levels", "auto"];
        string reference = _dir["vo-embedded"];
        var (code, _, err) = await Cli.Run(["run", Data3D, "--out", reference, .. voronoiOtsu]);
        Assert.True(code == 0, err);

        var cluster = StartCluster(coordinators: 1, nodes: 2);
        await cluster.UntilNodes(2);
        string outDir = _dir["vo-distributed"];
        var final = await Finished(cluster, await Submit(cluster, outDir, voronoiOtsu));
        Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{cluster.Logs()}");
        foreach (var pass in new[] { "(split-outline)", "(split-maxima)", "(split-flood)", "(label)", "(relabel)", "(downsample)", $"({Pipelines.MeshJob.PiecesStage})" })
            Assert.True(cluster.Nodes.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no gpu-node ran a {pass} pass");

        var labels = TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr"));
        Assert.True(labels.Max() >= 10, $"the fixture should hold many objects; it holds {labels.Max()}");
        foreach (string level in new[] { "0", "1", "2" })
            Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr", level)), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr", level)));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "labels.ome.zarr", "zarr.json")), File.ReadAllText(Path.Combine(outDir, "labels.ome.zarr", "zarr.json")));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.Equal(RunCliTests.MeshBody(Path.Combine(reference, "mesh.obj")), RunCliTests.MeshBody(Path.Combine(outDir, "mesh.obj")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
    }

    /// <summary>
    /// `run --threshold otsu` on the cluster: the predict pass runs on the gpu-nodes, the coordinator finds Otsu's threshold
    /// over the whole probabilities, and the labelling passes run on the gpu-nodes at that threshold (a job parameter);
    /// the labels, object table and recorded threshold equal the embedded run's.
    /// </summary>
    [Fact]
    public async Task An_otsu_run_on_the_cluster_equals_the_embedded_otsu_run()
    {
        string[] otsu = ["--threshold", "otsu", "--channel", "1", "--smooth-sigma", "1", "--min-size", "5", "--chunk", "16,32,32", "--mesh", "none"];
        string reference = _dir["otsu-embedded"];
        var (code, _, err) = await Cli.Run(["run", Data3D, "--out", reference, "--ilp", Ilp3D, .. otsu]);
        Assert.True(code == 0, err);

        var cluster = StartCluster(coordinators: 1, nodes: 2);
        await cluster.UntilNodes(2);
        string outDir = _dir["otsu-distributed"];
        var final = await Finished(cluster, await Submit(cluster, outDir, otsu));
        Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{cluster.Logs()}");
        foreach (var pass in new[] { "(predict)", "(label)", "(relabel)" })
            Assert.True(cluster.Nodes.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no gpu-node ran a {pass} pass");

        var labels = TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr"));
        Assert.True(labels.Max() >= 2, $"the fixture should hold several objects; it holds {labels.Max()}");
        Assert.Equal(labels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        var threshold = (string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!["otsu_threshold"]!.ToJsonString();
        Assert.Equal(threshold(reference), threshold(outDir));
        Assert.False(Directory.Exists(Path.Combine(outDir, ".chunkseg-split-probabilities.zarr")), "the scratch probabilities are removed");
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
    }

    /// <summary>
    /// A batch submitted as one job: its inputs run side by side, their chunks spread over the gpu-nodes; the good
    /// inputs' folders equal the embedded single run, the broken one is named (at submit and in the job's error) without
    /// stopping the others, batch.csv lists them, and the same submission once the input is mended runs only it.
    /// </summary>
    [Fact]
    public async Task A_batch_is_one_job_whose_good_inputs_equal_single_runs_and_a_resubmission_runs_only_what_is_missing()
    {
        string[] options = ["--ilp", Ilp3D, "--chunk", "16,32,32", "--mesh", "none"];
        string single = _dir["batch-single"];
        var (code, _, err) = await Cli.Run(["run", Data3D, "--out", single, .. options]);
        Assert.True(code == 0, err);
        string copies = _dir["batch-copies"], copy = Path.Combine(copies, "Data_3D.h5"), broken = _dir["batch-broken.h5"];
        Directory.CreateDirectory(copies);
        File.Copy(SharedData.Require("ilastik/Data_3D.h5"), copy);
        File.WriteAllText(broken, "not an HDF5 file");

        var cluster = StartCluster(coordinators: 1, nodes: 2);
        await cluster.UntilNodes(2);
        string outDir = _dir["batch"];
        string[] submit = ["submit", Data3D, copies + "/*.h5/data", broken + "/data", "--out", outDir, .. options, .. cluster.SeedArgs, "--json"];
        (code, var text, err) = await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", Secret, () => Cli.Run(submit));
        Assert.True(code == 0, err);
        Assert.Contains($"warning: {broken}/data: ", err);
        var final = await Finished(cluster, JsonNode.Parse(text)!["id"]!.GetValue<string>());
        Assert.Equal("failed", final["state"]!.GetValue<string>());
        Assert.Contains($"1 of 3 inputs failed: {broken}/data: ", final["error"]!.GetValue<string>());
        foreach (var pass in new[] { "(label)", "(relabel)" })
            Assert.True(cluster.Nodes.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no gpu-node ran a {pass} pass");
        foreach (string nickname in new[] { "Data_3D", "Data_3D_2" })
        {
            string dir = Path.Combine(outDir, nickname);
            Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(single, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(dir, "labels.ome.zarr")));
            Assert.Equal(File.ReadAllText(Path.Combine(single, "objects.csv")), File.ReadAllText(Path.Combine(dir, "objects.csv")));
        }
        var csv = File.ReadAllLines(Path.Combine(outDir, "batch.csv"));
        Assert.Equal("input,nickname,objects,voxels,seconds,status,error", csv[0]);
        Assert.Equal(["done", "done", "failed"], csv.Skip(1).Select(l => l.Split(',')[5]));

        // Mended and submitted again: the finished inputs are left as they are, the mended one runs.
        var before = new[] { "Data_3D", "Data_3D_2" }.Select(n => File.ReadAllText(Path.Combine(outDir, n, "manifest.json"))).ToList();
        File.Copy(SharedData.Require("ilastik/Data_3D.h5"), broken, overwrite: true);
        (code, text, err) = await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", Secret, () => Cli.Run(submit));
        Assert.True(code == 0, err);
        final = await Finished(cluster, JsonNode.Parse(text)!["id"]!.GetValue<string>());
        Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{cluster.Logs()}");
        Assert.Equal(before, new[] { "Data_3D", "Data_3D_2" }.Select(n => File.ReadAllText(Path.Combine(outDir, n, "manifest.json"))));
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(single, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(outDir, "batch-broken", "labels.ome.zarr")));
        csv = File.ReadAllLines(Path.Combine(outDir, "batch.csv"));
        Assert.Equal(["already done", "already done", "done"], csv.Skip(1).Select(l => l.Split(',')[5]));
    }

    /// <summary>
    /// `run --dilate` on the cluster: the dilation pass (after relabel, which then writes the run's workspace) runs on the
    /// gpu-nodes, rebuilt from the run's spec, and the labels and object table equal the embedded run's.
    /// </summary>
    [Fact]
    public async Task A_run_with_dilate_on_the_cluster_equals_the_embedded_run()
    {
        string[] dilate = ["--dilate", "2", "--chunk", "16,32,32", "--mesh", "none"];
        string reference = _dir["dilate-embedded"];
        var (code, _, err) = await Cli.Run(["run", Data3D, "--out", reference, .. Options.Where((o, i) => o != "--chunk" && (i == 0 || Options[i - 1] != "--chunk")), .. dilate]);
        Assert.True(code == 0, err);

        var cluster = StartCluster(coordinators: 1, nodes: 2);
        await cluster.UntilNodes(2);
        string outDir = _dir["dilate-distributed"];
        var final = await Finished(cluster, await Submit(cluster, outDir, dilate));
        Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{cluster.Logs()}");
        foreach (var pass in new[] { "(label)", "(relabel)", "(label-dilate)" })
            Assert.True(cluster.Nodes.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no gpu-node ran a {pass} pass");

        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.Contains("\"dilate\": \"2\"", File.ReadAllText(Path.Combine(outDir, "manifest.json")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
    }

    [Fact]
    public async Task Status_cancel_views_and_the_secret()
    {
        var cluster = StartCluster(coordinators: 1, nodes: 1);
        await cluster.UntilNodes(1);
        var status = await Status(cluster, null);
        var w = status["workers"]![0]!;
        Assert.Equal("n1", w["node"]!.GetValue<string>());
        Assert.Equal("cpu", w["backend"]!.GetValue<string>());
        Assert.Equal(Environment.MachineName, w["host"]!.GetValue<string>());

        // Members and shards, as Petabridge.Cmd would show them.
        var (code, view, err) = await Cli.Run("cluster", "show", "--seed", cluster.Seed, "--json");
        Assert.True(code == 0, err);
        var members = JsonNode.Parse(view)!["members"]!.AsArray();
        Assert.Equal(2, members.Count);
        Assert.Contains(members, m => m!["roles"]![0]!.GetValue<string>() == "gpu-node" && m["status"]!.GetValue<string>() == "Up");

        // Without the secret, or with another, nothing changes and the refusal says why.
        string[] submit = ["submit", Data3D, "--out", _dir["refused"], .. Options, "--seed", cluster.Seed];
        await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", null, () => Cli.Expect(2, "no cluster secret", submit));
        await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", "another", () => Cli.Expect(2, "cluster secret does not match", submit));
        await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", "another", () => Cli.Expect(2, "cluster secret does not match", "cluster", "down", cluster.NodeAddress(0), "--seed", cluster.Seed));
        Assert.Empty((await Status(cluster, null))["jobs"]!.AsArray());
        Assert.False(Directory.Exists(_dir["refused"]) && Directory.EnumerateFileSystemEntries(_dir["refused"]).Any());

        string job = await Submit(cluster, _dir["cancelled"], ["--chunk", "8,8,8"]);
        // Cancelled once its first chunks are recorded: by then the gpu-node hosts shards.
        await Until(async () => JobOf(await Status(cluster, job)) is { } j && j["state"]!.GetValue<string>() == "running" && j["chunksDone"]!.GetValue<long>() > 0,
            "the job to get going");
        (code, var said, err) = await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", Secret, () => Cli.Run("cancel", job, "--seed", cluster.Seed));
        Assert.True(code == 0, err);
        Assert.Contains(job, said);
        await Until(async () => JobOf(await Status(cluster, job))?["state"]!.GetValue<string>() == "cancelled", "the job to be cancelled");
        Assert.False(File.Exists(Path.Combine(_dir["cancelled"], "manifest.json")));

        (code, var shards, err) = await Cli.Run("cluster", "shards", "--seed", cluster.Seed, "--json");
        Assert.True(code == 0, err);
        // Every member has a region; shards live on the gpu-node's only.
        var regions = JsonNode.Parse(shards)!["regions"]!.AsArray();
        Assert.Equal(2, regions.Count);
        Assert.True(regions.Single(r => r!["address"]!.GetValue<string>().EndsWith(cluster.NodeAddress(0), StringComparison.Ordinal))!["shards"]!.AsObject().Count > 0, shards);
        Assert.Empty(regions.Single(r => !r!["address"]!.GetValue<string>().EndsWith(cluster.NodeAddress(0), StringComparison.Ordinal))!["shards"]!.AsObject());

        // A gpu-node asked to leave drains and exits cleanly.
        (code, _, err) = await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", Secret, () => Cli.Run("cluster", "leave", cluster.NodeAddress(0), "--seed", cluster.Seed));
        Assert.True(code == 0, err);
        await Until(() => cluster.Nodes[0].HasExited, "the node to leave and exit", TimeSpan.FromMinutes(2));
    }

    [Fact]
    public async Task The_gpu_nodes_continue_the_coordinators_trace_and_cluster_metrics_are_exported()
    {
        await using var receiver = await TelemetryExportTests.OtlpReceiver.StartAsync();
        var otel = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
        };
        var cluster = StartCluster(coordinators: 1, nodes: 1, otel);
        await cluster.UntilNodes(1);
        var final = await Finished(cluster, await Submit(cluster, _dir["traced"], ["--chunk", "16,32,32", "--mesh", "none"]));
        Assert.Equal("done", final["state"]!.GetValue<string>());
        // Stopped gracefully, each process flushes what it has not exported yet.
        Assert.Equal(0, await cluster.Nodes[0].TerminateAsync(TimeSpan.FromMinutes(2)));
        Assert.Equal(0, await cluster.Coordinators[0].TerminateAsync(TimeSpan.FromMinutes(2)));

        var spans = receiver.Traces.SelectMany(t => t.ResourceSpans)
            .SelectMany(r => r.ScopeSpans.SelectMany(s => s.Spans).Select(s => (Service: TelemetryExportTests.Attribute(r.Resource.Attributes, "service.name"), Span: s)))
            .ToList();
        var jobs = spans.Where(s => s.Span.Name == "job").ToList();
        // The gpu-node's chunks (the coordinator's own HDF5 copies run in its process and have chunk spans there too).
        var chunks = spans.Where(s => s.Span.Name == "chunk" && s.Service is "chunkseg-worker").ToList();
        Assert.NotEmpty(jobs);
        Assert.All(jobs, j => Assert.Equal("chunkseg-coordinator", j.Service));
        Assert.NotEmpty(chunks);
        var jobIds = jobs.ToDictionary(j => j.Span.SpanId, j => j.Span);
        foreach (var (_, chunk) in chunks)
        {
            Assert.True(jobIds.TryGetValue(chunk.ParentSpanId, out var job), "a gpu-node's chunk span continues a job span of the coordinator");
            Assert.Equal(job.TraceId, chunk.TraceId);
            Assert.Equal("n1", TelemetryExportTests.Attribute(chunk.Attributes, "chunkseg.worker"));
        }
        var metrics = receiver.Metrics.SelectMany(m => m.ResourceMetrics).SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics).ToList();
        var members = metrics.Where(m => m.Name == "chunkseg.cluster.members").SelectMany(m => m.Gauge.DataPoints).ToList();
        Assert.Contains(members, p => (string?)TelemetryExportTests.Attribute(p.Attributes, "role") == "gpu-node" && p.AsInt == 1);
        Assert.Contains(metrics, m => m.Name == "chunkseg.cluster.shards" && m.Gauge.DataPoints.Any(p => p.AsInt > 0));
        Assert.Contains(metrics, m => m.Name == "chunkseg.chunks.in_flight");
    }

    [Fact]
    public async Task Over_TLS_members_with_the_clusters_certificates_run_a_job_and_others_are_refused()
    {
        // A certificate authority and node certificates made here; members trust the authority (SSL_CERT_FILE).
        var now = DateTimeOffset.UtcNow;
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=chunkseg test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        File.WriteAllText(_dir["ca.pem"], ca.ExportCertificatePem());
        string trusted = Certificate("member", ca), rogue = Certificate("rogue", null);
        Dictionary<string, string> Tls(string pfx) => new()
        {
            ["CHUNKSEG_CLUSTER_TLS_CERT"] = pfx, ["CHUNKSEG_CLUSTER_TLS_PASSWORD"] = "pw", ["SSL_CERT_FILE"] = _dir["ca.pem"],
            ["CHUNKSEG_CLUSTER_SECRET"] = Secret,
        };

        var cluster = StartCluster(coordinators: 1, nodes: 1, Tls(trusted));
        JsonNode Client(Dictionary<string, string> environment, params string[] args)
        {
            using var process = new ChunkSegProcess(_dir[$"client-{Guid.NewGuid():N}.log"], environment, args);
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "the client did not exit");
            string json = process.Log.Split('\n').LastOrDefault(l => l.StartsWith('{')) ?? "";
            Assert.True(process.ExitCode == 0 && json.Length > 0, $"chunkseg {string.Join(' ', args)} exited {process.ExitCode}: {process.Log}");
            return JsonNode.Parse(json)!;
        }
        await Until(() => Client(Tls(trusted), ["status", .. cluster.SeedArgs, "--json"])["workers"]!.AsArray().Count == 1, "the gpu-node to join over TLS");
        string job = Client(Tls(trusted), ["submit", Data3D, "--out", _dir["tls"], "--ilp", Ilp3D, "--chunk", "16,32,32", "--mesh", "none", .. cluster.SeedArgs, "--json"])["id"]!
            .GetValue<string>();
        await Until(() => JobOf(Client(Tls(trusted), ["status", job, .. cluster.SeedArgs, "--json"]))?["state"]!.GetValue<string>() == "done", "the job to finish over TLS");
        Assert.True(File.Exists(Path.Combine(_dir["tls"], "manifest.json")));

        // A member whose certificate the cluster does not trust is refused at the handshake; a plain client hears nothing.
        // The seed checks the intruder's certificate and refuses it at once; the intruder itself often only sees its
        // association time out, so the refusal is read from the seed's log (what it logged from here on).
        var seed = cluster.Coordinators[0];
        int seedLogBefore = seed.Log.Length;
        using var intruder = cluster.StartNode("intruder", register: false, environment: Tls(rogue));
        await Until(() => seed.Log[seedLogBefore..].Contains("The remote certificate was rejected", StringComparison.Ordinal),
            "the seed to refuse the intruder's certificate", logs: () => $"{cluster.Logs()}\n--- intruder\n{intruder.Log}");
        Assert.Single(Client(Tls(trusted), ["status", .. cluster.SeedArgs, "--json"])["workers"]!.AsArray());
        await Cli.Expect(1, "no answer from the coordinator", ["status", .. cluster.SeedArgs]);

        string Certificate(string name, X509Certificate2? issuer)
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
            using var certificate = issuer is null
                ? request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1))
                : request.Create(issuer, now.AddDays(-1), now.AddDays(1), RandomNumberGenerator.GetBytes(8)).CopyWithPrivateKey(key);
            string path = _dir[$"{name}.pfx"];
            File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, "pw"));
            return path;
        }
    }

    [Fact]
    public async Task Poison_chunks_fail_the_job_by_chunk_index_instead_of_hanging()
    {
        // Two coordinators, as deployed: when every gpu-node dies at once the active one is not left alone (the Split
        // Brain Resolver downs an oldest member that is alone).
        var cluster = StartCluster(coordinators: 2, nodes: 0);
        string[] coarse = ["--chunk", "16,32,32"];

        // A chunk whose node reports a data error: failed at once.
        using (var erring = cluster.StartNode("erring", drill: "label:3:error"))
        {
            await cluster.UntilNodes(1);
            var failed = await Finished(cluster, await Submit(cluster, _dir["erring"], coarse));
            Assert.Equal("failed", failed["state"]!.GetValue<string>());
            Assert.Equal("chunk 3: CHUNKSEG_FAULT_DRILL: chunk 3 fails on purpose", Assert.Single(failed["failedChunks"]!.AsArray())!.GetValue<string>());
            Assert.Contains("chunk 3", failed["error"]!.GetValue<string>());
            Assert.False(File.Exists(Path.Combine(_dir["erring"], "manifest.json")));
        }

        // A chunk that kills every node running it (as an out-of-memory kill would): the nodes are restarted in place (same
        // address, as Kubernetes restarts a container in its pod) until the coordinator has lost the chunk with its node
        // three times and fails it.
        var crashing = Enumerable.Range(1, 2).Select(i =>
        {
            int port = FreePort();
            return new Restartable(() => cluster.StartNode($"crashing{i}", drill: "label:5:crash", register: false, port: port));
        }).ToList();
        try
        {
            string job = await Submit(cluster, _dir["crashing"], coarse);
            using var restarts = new CancellationTokenSource();
            var supervisor = Task.Run(async () =>
            {
                while (!restarts.IsCancellationRequested)
                {
                    foreach (var w in crashing.Where(w => w.Current.HasExited)) w.Replace();
                    await Task.Delay(100, CancellationToken.None);
                }
            }, CancellationToken.None);
            var final = await Finished(cluster, job);
            await restarts.CancelAsync();
            await supervisor;
            Assert.Equal("failed", final["state"]!.GetValue<string>());
            string reason = Assert.Single(final["failedChunks"]!.AsArray())!.GetValue<string>();
            // Three losses at least (a second copy of the chunk, on another node, may have died with it too).
            var losses = System.Text.RegularExpressions.Regex.Match(reason, "^chunk 5: the gpu-node running it stopped without answering ([0-9]+) times");
            Assert.True(losses.Success && int.Parse(losses.Groups[1].Value, CultureInfo.InvariantCulture) >= 3, reason);
            int kills = Directory.EnumerateFiles(_dir.Path, "crashing*.log").Sum(f => File.ReadAllText(f).Split("killing this worker on chunk 5").Length - 1);
            Assert.True(kills >= 3, $"the drill killed {kills} node(s)");
            Assert.False(File.Exists(Path.Combine(_dir["crashing"], "manifest.json")));
        }
        finally
        {
            foreach (var w in crashing) w.Dispose();
        }
    }

    [Fact]
    public async Task Bench_cluster_measures_each_node_count_and_a_straggler()
    {
        var (code, text, err) = await Cli.Run("bench", "cluster", "--workers", "1,2", "--chunks", "27", "--straggler-workers", "2",
            "--straggler-chunk", "8", "--straggler-chunks", "8", "--latency", "20");
        Assert.True(code == 0, err);
        Assert.Contains("27 chunks of 8³", text);
        var rows = text.Split('\n').Select(l => l.Split('│')).Where(c => c.Length == 9 && c[2].Trim().EndsWith(" s", StringComparison.Ordinal))
            .Select(c => c[1..8].Select(v => v.Trim()).ToArray()).ToList();
        Assert.Equal(3, rows.Count);
        Assert.StartsWith("embedded", rows[0][0]);
        Assert.StartsWith("cluster, 1", rows[1][0]);
        Assert.StartsWith("cluster, 2", rows[2][0]);
        foreach (var r in rows.Skip(1)) Assert.True(double.Parse(r[5], CultureInfo.InvariantCulture) > 0, text);   // coordinator msg/s
        Assert.Contains("with the straggler", text);
    }

    [Fact]
    public async Task Bad_seeds_and_jobs_are_refused_clearly()
    {
        await WithEnvironment("CHUNKSEG_SEEDS", null, () => Cli.Expect(2, "no seed node given", "status"));
        await Cli.Expect(2, "expected HOST:PORT", "status", "--seed", "localhost");
        // Checked before anything is sent: the run's own validation.
        await Cli.Expect(2, "run: give a classifier, --ilp PROJECT.ilp or --model MODEL", "submit", Data3D, "--out", _dir["x"], "--seed", "127.0.0.1:1");
        await Cli.Expect(1, "no answer from the coordinator", "status", "--seed", $"127.0.0.1:{FreePort()}");
        await Cli.Expect(2, "--state or --store-root", "coordinator", "--seed", "127.0.0.1:1");
        await Cli.Expect(2, "--http-port 70000: not a port number", "coordinator", "--seed", "127.0.0.1:1", "--state", _dir["s"], "--http-port", "70000");
        await Cli.Expect(2, "--http-address localhost: not an IP address", "worker", "--seed", "127.0.0.1:1", "--http-port", "8080", "--http-address", "localhost");
        // A port already taken is found out once the member has joined: it leaves again and the command fails.
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        string busy = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture), self = FreePort().ToString(CultureInfo.InvariantCulture);
        await Cli.Expect(2, $"--http-port {busy}: cannot listen on 127.0.0.1", "coordinator", "--hostname", "127.0.0.1", "--port", self, "--seed", $"127.0.0.1:{self}",
            "--state", _dir["busy"], "--http-port", busy, "--http-address", "127.0.0.1");
    }

    /// <summary>
    /// Starts coordinators and gpu-nodes, submits the job, runs <paramref name="fault"/> while it runs, waits for it to end
    /// and compares its outputs with the embedded run's; prints the longest gap between recorded chunks after the fault.
    /// </summary>
    private async Task RunCluster(string what, Func<TestCluster, string, Func<int>, Task> fault, int coordinators = 1, int nodes = 3, string? expectWorker = null)
    {
        string reference = await Reference();
        var cluster = StartCluster(coordinators, nodes);
        await cluster.UntilNodes(nodes);
        string outDir = _dir["distributed"];
        string job = await Submit(cluster, outDir, []);
        string components = Path.Combine(outDir, "labels.ome.zarr.work", "local.zarr.partial", ".chunkseg", "manifest.jsonl");
        int Recorded() => File.Exists(components) ? File.ReadLines(components).Count() - 1 : 0;
        using var gaps = new GapMeter(Recorded, 128);
        await fault(cluster, job, Recorded);
        gaps.FaultAt();
        var final = await Finished(cluster, job);
        Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{cluster.Logs()}");
        output.WriteLine($"fault: {what}; longest gap between recorded chunks after it: {gaps.LongestGapAfterFault.TotalSeconds:0.0} s");
        // Every chunk pass ran on the gpu-nodes, the mesh's marching cubes included; the coordinator only merged and welded.
        foreach (var pass in new[] { "(label)", "(relabel)", "(mesh)" })
            Assert.True(cluster.Nodes.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no gpu-node ran a {pass} pass");
        // The node processed chunks of some pass (its heartbeats count them; they reach the coordinator within a second).
        if (expectWorker is not null)
            await Until(async () => (await Status(cluster, null))["workers"]!.AsArray().Any(w => w!["node"]!.GetValue<string>() == expectWorker
                && w["chunksDone"]!.GetValue<long>() > 0), $"{expectWorker}'s heartbeat to count chunks it processed", TimeSpan.FromSeconds(30));

        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.h5") + "/labels"), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.Equal(RunCliTests.MeshBody(Path.Combine(reference, "mesh.obj")), RunCliTests.MeshBody(Path.Combine(outDir, "mesh.obj")));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        var embedded = JsonNode.Parse(File.ReadAllText(Path.Combine(reference, "manifest.json")))!;
        Assert.Equal(embedded["objects"]!.GetValue<long>(), manifest["objects"]!.GetValue<long>());
        // Each chunk recorded exactly once in the relabel pass's manifest (the last pass to keep its manifest).
        var chunks = File.ReadLines(Path.Combine(outDir, "labels.ome.zarr", ".chunkseg", "manifest.jsonl")).Skip(1)
            .Select(l => JsonNode.Parse(l)!["chunk"]!.GetValue<long>()).ToList();
        Assert.Equal(128, chunks.Count);
        Assert.Equal(128, chunks.Distinct().Count());
    }

    private TestCluster StartCluster(int coordinators, int nodes, IReadOnlyDictionary<string, string>? environment = null, string[]? coordinatorArgs = null)
    {
        var cluster = new TestCluster(_dir, coordinators, p => _processes.Add(p), environment ?? new Dictionary<string, string>(), coordinatorArgs ?? []);
        for (int i = 0; i < coordinators; i++) cluster.Coordinators.Add(cluster.StartCoordinator(i));
        for (int i = 1; i <= nodes; i++) cluster.StartNode($"n{i}");
        return cluster;
    }

    /// <summary>The embedded run of the same job, computed once for all tests of the class.</summary>
    private static async Task<string> Reference()
    {
        await ReferenceLock.WaitAsync();
        try
        {
            if (_reference is not null) return _reference;
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", "distributed-reference-" + Environment.ProcessId);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            var (code, _, err) = await Cli.Run(["run", Data3D, "--out", dir, .. Options]);
            Assert.True(code == 0, err);
            return _reference = dir;
        }
        finally
        {
            ReferenceLock.Release();
        }
    }

    private static async Task<string> Submit(TestCluster cluster, string outDir, string[] extra)
    {
        // A --voronoi-otsu run has no classifier.
        bool classifier = !extra.Contains("--voronoi-otsu");
        string[] options = [.. Options.Where((o, i) => !Dropped(o) && (i == 0 || !Dropped(Options[i - 1]))), .. extra];
        bool Dropped(string option) => extra.Contains(option) || (!classifier && option == "--ilp");
        var (code, text, err) = await WithEnvironment("CHUNKSEG_CLUSTER_SECRET", Secret,
            () => Cli.Run(["submit", Data3D, "--out", outDir, .. options, .. cluster.SeedArgs, "--json"]));
        Assert.True(code == 0, err);
        return JsonNode.Parse(text)!["id"]!.GetValue<string>();
    }

    private static async Task<JsonNode> Status(TestCluster cluster, string? job)
    {
        var (code, text, err) = await Cli.Run(job is null ? ["status", .. cluster.SeedArgs, "--json"] : ["status", job, .. cluster.SeedArgs, "--json"]);
        Assert.True(code is 0 or 1 && text.Length > 0, $"status exited {code}: {err}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>The status of a job once it ended (done, failed or cancelled); a coordinator failing over is asked again.</summary>
    private static async Task<JsonNode> Finished(TestCluster cluster, string job)
    {
        JsonNode? final = null;
        await Until(async () =>
        {
            var (code, text, _) = await Cli.Run(["status", job, .. cluster.SeedArgs, "--json"]);
            if (code != 0 || text.Length == 0) return false;
            final = JobOf(JsonNode.Parse(text)!);
            return final?["state"]!.GetValue<string>() is "done" or "failed" or "cancelled";
        }, "the job to end", TimeSpan.FromMinutes(5));
        return final!;
    }

    private static JsonNode? JobOf(JsonNode status) => status["jobs"]!.AsArray() is { Count: > 0 } jobs ? jobs[0] : null;

    /// <summary>Runs <paramref name="action"/> with an environment variable set (or removed); the CLI runs in this process.</summary>
    private static async Task<T> WithEnvironment<T>(string name, string? value, Func<Task<T>> action)
    {
        await EnvironmentLock.WaitAsync();
        string? old = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
        try { return await action(); }
        finally
        {
            Environment.SetEnvironmentVariable(name, old);
            EnvironmentLock.Release();
        }
    }

    private static async Task WithEnvironment(string name, string? value, Func<Task> action) =>
        await WithEnvironment(name, value, async () => { await action(); return 0; });

    private static readonly SemaphoreSlim EnvironmentLock = new(1, 1);

    private static Task Until(Func<bool> condition, string what, TimeSpan? limit = null, Func<string>? logs = null) =>
        Until(() => Task.FromResult(condition()), what, limit, logs);

    /// <summary>Polls until the condition holds; on time-out the failure carries the given logs.</summary>
    private static async Task Until(Func<Task<bool>> condition, string what, TimeSpan? limit = null, Func<string>? logs = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed >= (limit ?? TimeSpan.FromMinutes(3)))
                Assert.Fail($"timed out waiting for {what}" + (logs is null ? "" : $"\n{logs()}"));
            await Task.Delay(100);
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Coordinators and gpu-nodes on loopback; the coordinators' ports are the seeds.</summary>
    private sealed class TestCluster(TempDir dir, int coordinators, Action<IDisposable> own, IReadOnlyDictionary<string, string> environment,
        string[] coordinatorArgs)
    {
        private readonly IReadOnlyDictionary<string, string> _environment = environment;
        private readonly int[] _coordinatorPorts = Enumerable.Range(0, coordinators).Select(_ => FreePort()).ToArray();
        private readonly Dictionary<string, int> _nodePorts = new(StringComparer.Ordinal);
        public List<ChunkSegProcess> Coordinators { get; } = [];
        public List<ChunkSegProcess> Nodes { get; } = [];
        public string Seed => $"127.0.0.1:{_coordinatorPorts[0]}";

        /// <summary>Every coordinator as a seed: a client still reaches the cluster when the first one is dead.</summary>
        public string[] SeedArgs => _coordinatorPorts.SelectMany(p => new[] { "--seed", $"127.0.0.1:{p}" }).ToArray();

        public string NodeAddress(int index) => $"127.0.0.1:{_nodePorts[Path.GetFileNameWithoutExtension(Nodes[index].LogPath)]}";

        public ChunkSegProcess StartCoordinator(int index)
        {
            // A restarted only coordinator (the first seed) must find the running cluster, not form a new one: the first
            // gpu-node is a seed too.
            string[] nodeSeed = _nodePorts.Count > 0 ? ["--seed", $"127.0.0.1:{_nodePorts.First().Value}"] : [];
            var process = new ChunkSegProcess(dir[$"coordinator{index}-{Guid.NewGuid():N}.log"], new Dictionary<string, string>(_environment) { ["CHUNKSEG_CLUSTER_SECRET"] = Secret },
                ["coordinator", "--hostname", "127.0.0.1",
                "--port", _coordinatorPorts[index].ToString(CultureInfo.InvariantCulture), .. SeedArgs, .. nodeSeed, "--state", dir["state"], .. coordinatorArgs]);
            own(process);
            return process;
        }

        public ChunkSegProcess StartNode(string name, string? drill = null, bool register = true, int? port = null,
            IReadOnlyDictionary<string, string>? environment = null, string[]? args = null)
        {
            port ??= FreePort();
            _nodePorts[name] = port.Value;
            var variables = new Dictionary<string, string>(environment ?? _environment);
            if (drill is not null) variables["CHUNKSEG_FAULT_DRILL"] = drill;
            var process = new ChunkSegProcess(dir[register ? $"{name}.log" : $"{name}-{Guid.NewGuid():N}.log"], variables, ["worker", "--hostname", "127.0.0.1", "--port", port.Value.ToString(CultureInfo.InvariantCulture),
                .. SeedArgs, "--concurrency", "1", "--name", name, .. args ?? ["--backend", "cpu"]]);
            own(process);
            if (register) Nodes.Add(process);
            return process;
        }

        /// <summary>Waits until the coordinator's status lists <paramref name="count"/> gpu-nodes.</summary>
        public async Task UntilNodes(int count) => await Until(async () =>
        {
            var (code, text, _) = await Cli.Run(["status", .. SeedArgs, "--json"]);
            return code == 0 && JsonNode.Parse(text)!["workers"]!.AsArray().Count >= count;
        }, $"{count} gpu-node(s) to join");

        public string Logs() => string.Join("\n", Coordinators.Concat(Nodes).Select(p => $"--- {p.LogPath}\n{p.Log}"));
    }

    /// <summary>A process that a test may kill (SIGKILL) and start again in its place.</summary>
    private sealed class Restartable(Func<ChunkSegProcess> start) : IDisposable
    {
        public ChunkSegProcess Current { get; private set; } = start();

        public void Replace()
        {
            Current.Kill();
            Current.Dispose();
            Current = start();
        }

        public void Dispose() => Current.Dispose();
    }

    /// <summary>
    /// Samples how many chunks the faulted pass (the classify + label pass) has recorded: the longest time without a new
    /// one between the fault and the pass's last chunk.
    /// </summary>
    private sealed class GapMeter : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan _faultAt = TimeSpan.MaxValue, _lastChange, _longest;

        public GapMeter(Func<int> recordedChunks, int total)
        {
            _loop = Task.Run(async () =>
            {
                long last = -1;
                while (!_stop.IsCancellationRequested && last < total)
                {
                    long recorded;
                    try { recorded = recordedChunks(); }
                    catch (IOException) { recorded = last; }   // the pass's folder renamed at its end
                    if (recorded < last) break;
                    var now = _clock.Elapsed;
                    if (recorded != last)
                    {
                        if (now > _faultAt) _longest = Max(_longest, now - Max(_lastChange, _faultAt));
                        last = recorded;
                        _lastChange = now;
                    }
                    try { await Task.Delay(100, _stop.Token); } catch (OperationCanceledException) { }
                }
            });
        }

        public void FaultAt() => _faultAt = _clock.Elapsed;

        public TimeSpan LongestGapAfterFault => _longest;

        private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

        public void Dispose()
        {
            _stop.Cancel();
            try { _loop.Wait(); } catch (AggregateException) { }
            _stop.Dispose();
        }
    }
}

/// <summary>
/// The cluster tests run alone: each starts several processes on the machine's cores, and other test classes running
/// beside them would only make both slower (the tests wait on progress, so they would pass, but later).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "cluster";
}
