using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The distributed mode end to end on this machine: a real rabbitmq-server, one coordinator and three worker processes
/// (`chunkseg coordinator`, `chunkseg worker`), a job from `chunkseg submit`. Its outputs must equal the embedded run's,
/// also when a worker is killed with SIGKILL mid-job, when the coordinator is killed and restarted, and when the broker
/// restarts: equal labels (so equal object counts and voxel totals) and object tables prove no chunk was lost or counted twice.
/// </summary>
public sealed class DistributedTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly SemaphoreSlim ReferenceLock = new(1, 1);
    private static string? _reference;

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";
    private static readonly string[] Options = ["--ilp", Ilp3D, "--chunk", "8,16,16", "--min-size", "3"];

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Coordinator_and_three_workers_equal_the_embedded_run() =>
        await RunCluster(async (_, _, _, _) => await Task.CompletedTask);

    [Fact]
    public async Task A_worker_killed_mid_job_loses_no_chunk() =>
        await RunCluster(async (broker, workers, _, progress) =>
        {
            await Until(() => progress() > 10, "the job to get going");
            workers[0].Kill();
        });

    [Fact]
    public async Task A_coordinator_killed_and_restarted_resumes_the_job() =>
        await RunCluster(async (broker, _, coordinator, progress) =>
        {
            await Until(() => progress() > 10, "the job to get going");
            coordinator.Replace();
        });

    [Fact]
    public async Task A_broker_restart_mid_job_loses_no_chunk() =>
        await RunCluster(async (broker, _, _, progress) =>
        {
            await Until(() => progress() > 10, "the job to get going");
            await broker.RestartAsync();
        });

    [Fact]
    public async Task Status_lists_the_workers_and_queues_and_cancel_stops_a_job()
    {
        await using var broker = await RabbitBroker.StartAsync();
        using var coordinator = new ChunkSegProcess(_dir["coordinator.log"], "coordinator", "--broker", broker.Address, "--state", _dir["state"]);
        using var worker = new ChunkSegProcess(_dir["w.log"], "worker", "--broker", broker.Address, "--concurrency", "1", "--name", "solo", "--backend", "cpu");
        JsonNode status = null!;
        await Until(async () => (status = await Status(broker, null))["workers"]!.AsArray().Count == 1, "the worker's heartbeat");
        var w = status["workers"]![0]!;
        Assert.Equal("solo", w["worker"]!.GetValue<string>());
        Assert.Equal("cpu", w["backend"]!.GetValue<string>());
        Assert.Equal(Environment.MachineName, w["host"]!.GetValue<string>());
        Assert.Equal(["chunkseg.dead", "chunkseg.jobs", "chunkseg.results", "chunkseg.tasks"],
            status["queues"]!.AsObject().Select(q => q.Key).Order(StringComparer.Ordinal));

        string job = await Submit(broker, _dir["cancelled"], ["--chunk", "8,8,8"]);
        await Until(async () => JobOf(await Status(broker, job))?["state"]!.GetValue<string>() == "running", "the job to start");
        var (code, output, err) = await Cli.Run("cancel", job, "--broker", broker.Address);
        Assert.True(code == 0, err);
        Assert.Contains(job, output);
        await Until(async () => JobOf(await Status(broker, job))?["state"]!.GetValue<string>() == "cancelled", "the job to be cancelled");
        Assert.False(File.Exists(Path.Combine(_dir["cancelled"], "manifest.json")));

        // A worker stopped with SIGTERM drains and exits cleanly.
        Assert.Equal(0, await worker.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Poison_chunks_fail_the_job_by_chunk_index_instead_of_hanging()
    {
        await using var broker = await RabbitBroker.StartAsync();
        using var coordinator = new ChunkSegProcess(_dir["coordinator.log"], "coordinator", "--broker", broker.Address, "--state", _dir["state"]);
        string[] coarse = ["--chunk", "16,32,32"];

        // A chunk whose worker reports a data error: dead-lettered by the worker, failed at once.
        using (var erring = new ChunkSegProcess(_dir["erring.log"], new Dictionary<string, string> { ["CHUNKSEG_FAULT_DRILL"] = "label:3:error" },
            "worker", "--broker", broker.Address, "--concurrency", "1"))
        {
            var failed = await Finished(broker, await Submit(broker, _dir["erring"], coarse));
            Assert.Equal("failed", failed["state"]!.GetValue<string>());
            Assert.Equal("chunk 3: CHUNKSEG_FAULT_DRILL: chunk 3 fails on purpose", Assert.Single(failed["failedChunks"]!.AsArray())!.GetValue<string>());
            Assert.Contains("chunk 3", failed["error"]!.GetValue<string>());
            Assert.False(File.Exists(Path.Combine(_dir["erring"], "manifest.json")));
        }

        // A chunk that kills every worker taking it (as an out-of-memory kill would): the workers are restarted, as
        // Kubernetes would, until the broker's delivery limit sends the chunk to the dead-letter queue.
        var crashing = Enumerable.Range(1, 2).Select(i => new Restartable(() => new ChunkSegProcess(_dir[$"crashing{i}-{Guid.NewGuid():N}.log"],
            new Dictionary<string, string> { ["CHUNKSEG_FAULT_DRILL"] = "label:5:crash" }, "worker", "--broker", broker.Address, "--concurrency", "1"))).ToList();
        try
        {
            string job = await Submit(broker, _dir["crashing"], coarse);
            using var restarts = new CancellationTokenSource();
            var supervisor = Task.Run(async () =>
            {
                while (!restarts.IsCancellationRequested)
                {
                    foreach (var w in crashing.Where(w => w.Current.HasExited)) w.Replace();
                    await Task.Delay(100, CancellationToken.None);
                }
            }, CancellationToken.None);
            var final = await Finished(broker, job);
            await restarts.CancelAsync();
            await supervisor;
            Assert.Equal("failed", final["state"]!.GetValue<string>());
            string reason = Assert.Single(final["failedChunks"]!.AsArray())!.GetValue<string>();
            Assert.StartsWith("chunk 5: dead-lettered by the broker", reason);
            int kills = Directory.EnumerateFiles(_dir.Path, "crashing*.log").Sum(f => File.ReadAllText(f).Split("killing this worker on chunk 5").Length - 1);
            Assert.True(kills >= 2, $"the drill killed {kills} worker(s)");
            Assert.False(File.Exists(Path.Combine(_dir["crashing"], "manifest.json")));
        }
        finally
        {
            foreach (var w in crashing) w.Dispose();
        }
    }

    [Fact]
    public async Task Bench_broker_measures_each_worker_count_against_the_embedded_run()
    {
        await using var broker = await RabbitBroker.StartAsync();
        var (code, output, err) = await Cli.Run("bench", "broker", "--broker", broker.Address, "--workers", "1,2", "--chunks", "27");
        Assert.True(code == 0, err);
        Assert.Contains("27 chunks of 8³", output);
        // One row per mode (a row's first line holds its figures; the mode's name may wrap onto more lines).
        var rows = output.Split('\n').Select(l => l.Split('│')).Where(c => c.Length == 8 && c[2].Trim().EndsWith(" s", StringComparison.Ordinal))
            .Select(c => c[1..7].Select(v => v.Trim()).ToArray()).ToList();
        Assert.Equal(3, rows.Count);
        Assert.StartsWith("embedded", rows[0][0]);
        Assert.StartsWith("broker, 1", rows[1][0]);
        Assert.StartsWith("broker, 2", rows[2][0]);
        foreach (var r in rows)
        {
            Assert.True(double.Parse(r[2], System.Globalization.CultureInfo.InvariantCulture) > 0, output);   // chunks/s
            if (r[0].StartsWith("broker", StringComparison.Ordinal))
                Assert.True(double.Parse(r[5], System.Globalization.CultureInfo.InvariantCulture) > 0, output);   // coordinator msg/s
        }
    }

    /// <summary>The status of a job once it ended (done, failed or cancelled).</summary>
    private static async Task<JsonNode> Finished(RabbitBroker broker, string job)
    {
        JsonNode final = null!;
        await Until(async () => (final = JobOf(await Status(broker, job))!) is not null && final["state"]!.GetValue<string>() is "done" or "failed" or "cancelled",
            "the job to end", TimeSpan.FromMinutes(4));
        return final;
    }

    [Fact]
    public async Task Bad_jobs_and_broker_addresses_are_refused_clearly()
    {
        await Cli.Expect(2, "credentials in the address are refused", "status", "--broker", "amqp://user:secret@localhost:5672/");
        await Cli.Expect(2, "not an amqp:// or amqps:// address", "status", "--broker", "http://localhost/");
        // Checked before anything is queued: the run's own validation.
        await Cli.Expect(2, "give exactly one of --ilp PROJECT.ilp or --model MODEL", "submit", Data3D, "--out", _dir["x"], "--broker", "amqp://127.0.0.1:1/");
        await Cli.Expect(1, "cannot connect", "status", "--broker", "amqp://127.0.0.1:1/");
    }

    /// <summary>
    /// Starts a broker, a coordinator and three workers, submits the job, runs <paramref name="fault"/> while it runs, waits
    /// for the job to end and compares its outputs with the embedded run's.
    /// </summary>
    private async Task RunCluster(Func<RabbitBroker, ChunkSegProcess[], Restartable, Func<int>, Task> fault)
    {
        string reference = await Reference();
        await using var broker = await RabbitBroker.StartAsync();
        using var coordinator = new Restartable(() => new ChunkSegProcess(_dir[$"coordinator-{Guid.NewGuid():N}.log"],
            "coordinator", "--broker", broker.Address, "--state", _dir["state"]));
        var workers = Enumerable.Range(1, 3).Select(i => new ChunkSegProcess(_dir[$"worker{i}.log"],
            "worker", "--broker", broker.Address, "--concurrency", "1", "--name", $"w{i}")).ToArray();
        try
        {
            string outDir = _dir["distributed"];
            string job = await Submit(broker, outDir, []);
            string components = Path.Combine(outDir, "labels.ome.zarr.work", "local.zarr.partial", ".chunkseg", "manifest.jsonl");
            await fault(broker, workers, coordinator, () => File.Exists(components) ? File.ReadLines(components).Count() : 0);
            JsonNode final = null!;
            await Until(async () => (final = JobOf(await Status(broker, job))!) is not null && final["state"]!.GetValue<string>() is "done" or "failed",
                "the job to end", TimeSpan.FromMinutes(4));
            Assert.True(final["state"]!.GetValue<string>() == "done", $"job failed: {final["error"]}\n{coordinator.Current.Log}");
            // Every chunk pass ran on the workers, the mesh's marching cubes included; the coordinator only merged and welded.
            foreach (var pass in new[] { "(label)", "(relabel)", "(mesh)" })
                Assert.True(workers.Any(w => w.Log.Contains(pass, StringComparison.Ordinal)), $"no worker ran a {pass} pass");

            Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
            Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(reference, "labels.h5") + "/labels"), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.h5") + "/labels"));
            Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
            Assert.Equal(RunCliTests.MeshBody(Path.Combine(reference, "mesh.obj")), RunCliTests.MeshBody(Path.Combine(outDir, "mesh.obj")));
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
            var embedded = JsonNode.Parse(File.ReadAllText(Path.Combine(reference, "manifest.json")))!;
            Assert.Equal(embedded["objects"]!.GetValue<long>(), manifest["objects"]!.GetValue<long>());
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
        }
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

    private static async Task<string> Submit(RabbitBroker broker, string outDir, string[] extra)
    {
        string[] options = [.. Options.Where((o, i) => !extra.Contains(o) && (i == 0 || !extra.Contains(Options[i - 1]))), .. extra];
        var (code, output, err) = await Cli.Run(["submit", Data3D, "--out", outDir, .. options, "--broker", broker.Address, "--json"]);
        Assert.True(code == 0, err);
        return JsonNode.Parse(output)!["id"]!.GetValue<string>();
    }

    private static async Task<JsonNode> Status(RabbitBroker broker, string? job)
    {
        var (code, output, err) = await Cli.Run(job is null ? ["status", "--broker", broker.Address, "--json"] : ["status", job, "--broker", broker.Address, "--json"]);
        var node = JsonNode.Parse(output);
        Assert.True(node is not null, $"status exited {code}: {err}");
        return node;
    }

    /// <summary>The one job a status for a job id lists, or null while the coordinator has not taken it yet.</summary>
    private static JsonNode? JobOf(JsonNode status) => status["jobs"]!.AsArray() is { Count: > 0 } jobs ? jobs[0] : null;

    private static Task Until(Func<bool> condition, string what, TimeSpan? limit = null) => Until(() => Task.FromResult(condition()), what, limit);

    private static async Task Until(Func<Task<bool>> condition, string what, TimeSpan? limit = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < (limit ?? TimeSpan.FromMinutes(2)), $"timed out waiting for {what}");
            await Task.Delay(50);
        }
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
}
