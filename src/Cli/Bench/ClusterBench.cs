using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Pipelines;
using ChunkSeg.Cluster;
using ChunkSeg.Cluster.Dispatch;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench cluster`: what the Akka cluster costs per chunk, and how it copes with a straggler. This process
/// joins as the coordinator (on loopback) and starts `chunkseg worker` processes. (1) A CPU-light job (synthesizing
/// tiny chunks) runs embedded on one thread, then over 1, 2, 4… gpu-node processes: the time per chunk above the
/// compute is the cluster's overhead (chunk message, acceptance, result, manifest), and the coordinator's message rate
/// its ceiling. (2) A job whose chunks each take a device's time (a fault drill's latency, so that nodes sharing this
/// machine's cores do not slow each other) runs on N nodes, then on N nodes of which one takes three times as long:
/// the second wall time against the ideal for that capacity (the first scaled by N / (N − 1 + 1/3)).
/// </summary>
internal static class ClusterBench
{
    public static Command Create(CommandContext context)
    {
        var workers = new Option<string>("--workers") { Description = "gpu-node process counts to measure, comma-separated", DefaultValueFactory = _ => "1,2,4" };
        var chunks = new Option<int>("--chunks") { Description = "Chunks of 8³ per overhead job (rounded up to a cube)", DefaultValueFactory = _ => 1000 };
        var stragglerNodes = new Option<int>("--straggler-workers") { Description = "gpu-nodes of the straggler run (0: skip it)", DefaultValueFactory = _ => 3 };
        var stragglerChunk = new Option<int>("--straggler-chunk") { Description = "Edge of the straggler run's chunks", DefaultValueFactory = _ => 16 };
        var stragglerCount = new Option<int>("--straggler-chunks") { Description = "Chunks of the straggler run (rounded up to a cube)", DefaultValueFactory = _ => 216 };
        var latency = new Option<int>("--latency") { Description = "Milliseconds each chunk of the straggler run takes on a node (three times that on the slow one)", DefaultValueFactory = _ => 50 };
        var command = new Command("cluster", "The cluster's overhead per chunk and coordinator messages/s with 1, 2, 4 gpu-node processes, and a straggler run")
        {
            workers, chunks, stragglerNodes, stragglerChunk, stragglerCount, latency,
        };
        command.SetAction(async (parse, ct) =>
        {
            var counts = parse.GetValue(workers)!.Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
            string dir = Path.Combine(Path.GetTempPath(), $"chunkseg-bench-cluster-{Environment.ProcessId}");
            Directory.CreateDirectory(dir);
            int port = FreePort();
            var seed = new DnsEndPoint("127.0.0.1", port);
            var settings = new ClusterSettings([ClusterSettings.CoordinatorRole], "127.0.0.1", port, [seed]);
            var member = ClusterMember.StartCoordinator(settings, new CoordinatorOptions(Path.Combine(dir, "state"), null, 1, DispatchSettings.Default),
                NullLoggerFactory.Instance);
            var rows = new List<(string Mode, int Workers, long Chunks, double Seconds, double MessagesPerSecond, long Extra)>();
            (double Even, double Straggler, int Nodes, int LatencyMs)? straggler = null;
            try
            {
                var small = Cube(8, parse.GetValue(chunks));
                var embedded = await Job(dir, "embedded", small, 8, null, ct).ConfigureAwait(false);
                rows.Add(("embedded, 1 thread", 1, embedded.Chunks, embedded.Seconds, 0, 0));
                foreach (int n in counts)
                {
                    using var nodes = await StartNodes(member, seed, n, latencyMs: 0, slow: 0, ct).ConfigureAwait(false);
                    ClusterChunkTransport? transport = null;
                    var result = await Job(dir, $"cluster-{n}", small, 8, () => transport = (ClusterChunkTransport)member.NewTransport(NullLogger.Instance), ct).ConfigureAwait(false);
                    rows.Add(($"cluster, {n} gpu-node process(es)", n, result.Chunks, result.Seconds, (transport!.Sent + transport.Received) / result.Seconds,
                        transport.Resent + transport.Duplicates));
                }
                int m = parse.GetValue(stragglerNodes);
                if (m >= 2)
                {
                    int edge = parse.GetValue(stragglerChunk);
                    var big = Cube(edge, parse.GetValue(stragglerCount));
                    int ms = parse.GetValue(latency);
                    double even, slow;
                    using (await StartNodes(member, seed, m, ms, slow: 0, ct).ConfigureAwait(false))
                        even = (await Job(dir, "even", big, edge, () => member.NewTransport(NullLogger.Instance), ct).ConfigureAwait(false)).Seconds;
                    using (await StartNodes(member, seed, m, ms, slow: 1, ct).ConfigureAwait(false))
                        slow = (await Job(dir, "straggler", big, edge, () => member.NewTransport(NullLogger.Instance), ct).ConfigureAwait(false)).Seconds;
                    straggler = (even, slow, m, ms);
                }
            }
            finally
            {
                await member.System.Terminate().ConfigureAwait(false);
                Directory.Delete(dir, recursive: true);
            }
            Print(context, rows, straggler);
            return CliApp.Ok;
        });
        return command;
    }

    private static void Print(CommandContext context, List<(string Mode, int Workers, long Chunks, double Seconds, double MessagesPerSecond, long Extra)> rows,
        (double Even, double Straggler, int Nodes, int LatencyMs)? straggler)
    {
        var ci = CultureInfo.InvariantCulture;
        double computeMs = rows[0].Seconds * 1000 / rows[0].Chunks;
        var table = new Table().Border(TableBorder.Rounded).Title($"bench cluster: {rows[0].Chunks} chunks of 8³ (synthesize), {Environment.ProcessorCount} cores")
            .AddColumn("mode").AddColumn(new TableColumn("wall").RightAligned()).AddColumn(new TableColumn("chunks/s").RightAligned())
            .AddColumn(new TableColumn("ms per chunk per node").RightAligned()).AddColumn(new TableColumn("overhead ms/chunk").RightAligned())
            .AddColumn(new TableColumn("coordinator msg/s").RightAligned()).AddColumn(new TableColumn("resent").RightAligned());
        foreach (var r in rows)
        {
            double perWorker = r.Seconds * 1000 * r.Workers / r.Chunks;
            bool cluster = r.MessagesPerSecond > 0;
            table.AddRow(r.Mode, string.Format(ci, "{0:0.00} s", r.Seconds), string.Format(ci, "{0:0}", r.Chunks / r.Seconds), string.Format(ci, "{0:0.00}", perWorker),
                cluster ? string.Format(ci, "{0:0.00}", perWorker - computeMs) : "-", cluster ? string.Format(ci, "{0:0}", r.MessagesPerSecond) : "-",
                cluster ? r.Extra.ToString(ci) : "-");
        }
        context.Stdout.Write(table);
        if (straggler is not { } s) return;
        // One node at a third of the speed: the capacity of N − 1 + 1/3 nodes; the even run's wall times N nodes' worth of work.
        double ideal = s.Even * s.Nodes / (s.Nodes - 1 + 1.0 / 3);
        var st = new Table().Border(TableBorder.Rounded).Title($"straggler: {s.Nodes} gpu-nodes taking {s.LatencyMs} ms a chunk, one {3 * s.LatencyMs} ms " +
                $"(CHUNKSEG_FAULT_DRILL=synthesize:*:latency:MS)")
            .AddColumn("run").AddColumn(new TableColumn("wall").RightAligned()).AddColumn(new TableColumn("vs ideal").RightAligned());
        st.AddRow("all nodes even", string.Format(ci, "{0:0.00} s", s.Even), "-");
        st.AddRow("ideal with the straggler", string.Format(ci, "{0:0.00} s", ideal), "1.00×");
        st.AddRow("with the straggler", string.Format(ci, "{0:0.00} s", s.Straggler), string.Format(ci, "{0:0.00}×", s.Straggler / ideal));
        context.Stdout.Write(st);
    }

    /// <summary>
    /// Starts <paramref name="n"/> gpu-node processes whose chunks take <paramref name="latencyMs"/> longer (the first
    /// <paramref name="slow"/> three times that) and waits until the coordinator can give them work.
    /// </summary>
    private static async Task<NodeSet> StartNodes(ClusterMember member, DnsEndPoint seed, int n, int latencyMs, int slow, CancellationToken ct)
    {
        string tag = Guid.NewGuid().ToString("N")[..6];
        var set = new NodeSet(Enumerable.Range(0, n).Select(i => new WorkerProcess(seed, $"bench-{tag}-{i}", i < slow ? 3 * latencyMs : latencyMs)).ToList());
        var waited = Stopwatch.StartNew();
        while (member.Board.Nodes.Count(node => node.Available && node.Beat.Node.StartsWith($"bench-{tag}-", StringComparison.Ordinal)) < n)
        {
            if (waited.Elapsed > TimeSpan.FromMinutes(2))
            {
                string why = string.Join("; ", set.Processes.Select((p, i) => $"bench-{tag}-{i} {p.Describe()}"));
                set.Dispose();
                throw new ClusterException($"bench cluster: {n} gpu-nodes did not join within 2 minutes ({why})");
            }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
        return set;
    }

    private static async Task<(long Chunks, double Seconds)> Job(string dir, string name, Long3 shape, int edge, Func<IChunkTransport>? transport, CancellationToken ct)
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [shape.Z, shape.Y, shape.X], SynthesizeStage.TypeOf(SyntheticKind.Raw), [edge, edge, edge],
            new VoxelSize(1, 1, 1), CodecSpec.Default);
        var request = new JobRequest(StageCatalog.Synthesize, null, VolumeStore.ParseAddress(Path.Combine(dir, name + ".zarr")), options, new Long3(edge, edge, edge),
            Workers: 1, Overwrite: true, new Dictionary<string, string> { ["nuclei"] = "20" }, Transport: transport);
        var clock = Stopwatch.StartNew();
        var outcome = await EmbeddedJob.RunAsync(request, NullLoggerFactory.Instance, null, ct).ConfigureAwait(false);
        if (!outcome.Result.IsComplete) throw new ClusterException($"bench cluster: {name} did not complete ({outcome.Result.Failed.Count} chunks failed)");
        return (outcome.Result.ChunksTotal, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The smallest cube of chunks of edge <paramref name="edge"/> holding at least <paramref name="chunks"/> (in integers: Math.Cbrt(27) is 3.0000000000000004).</summary>
    private static Long3 Cube(int edge, int chunks)
    {
        int side = 1;
        while ((long)side * side * side < chunks) side++;
        return new Long3((long)edge * side, (long)edge * side, (long)edge * side);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class NodeSet(List<WorkerProcess> processes) : IDisposable
    {
        public List<WorkerProcess> Processes { get; } = processes;

        public void Dispose()
        {
            foreach (var p in Processes) p.Terminate();
            foreach (var p in Processes) p.Dispose();
        }
    }

    /// <summary>A gpu-node process of the bench; the tail of what it printed explains a node that never joined.</summary>
    private sealed class WorkerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _tail = new();

        public WorkerProcess(DnsEndPoint seed, string name, int latencyMs)
        {
            // This very program: its apphost (chunkseg), or `dotnet chunkseg.dll` under any other host (dotnet, a test host).
            string program = Environment.ProcessPath!;
            bool apphost = Path.GetFileNameWithoutExtension(program) == Path.GetFileNameWithoutExtension(typeof(ClusterBench).Assembly.Location);
            var start = new ProcessStartInfo(apphost ? program : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            if (!apphost) start.ArgumentList.Add(typeof(ClusterBench).Assembly.Location);
            foreach (var a in (string[])["worker", "--hostname", "127.0.0.1", "--port", FreePort().ToString(CultureInfo.InvariantCulture),
                "--seed", $"{seed.Host}:{seed.Port}", "--concurrency", "1", "--name", name, "--backend", "cpu"])
                start.ArgumentList.Add(a);
            if (latencyMs > 0) start.Environment[FaultDrill.Variable] = $"{StageCatalog.Synthesize}:*:latency:{latencyMs}";
            _process = Process.Start(start)!;
            _process.OutputDataReceived += (_, e) => Keep(e.Data);
            _process.ErrorDataReceived += (_, e) => Keep(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Describe() =>
            (_process.HasExited ? $"exited with {_process.ExitCode}" : "running") + (_tail.IsEmpty ? "" : ": " + string.Join(" | ", _tail));

        private void Keep(string? line)
        {
            if (line is null) return;
            _tail.Enqueue(line);
            while (_tail.Count > 5) _tail.TryDequeue(out _);
        }

        /// <summary>
        /// SIGTERM: the node drains and leaves the cluster gracefully, as a scaled-down node would (killing every node at
        /// once would leave the coordinator alone, which the Split Brain Resolver downs).
        /// </summary>
        public void Terminate()
        {
            if (_process.HasExited) return;
            using var term = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);
            term?.WaitForExit();
        }

        /// <summary>Waits for the node to leave; kills it if it has not within a minute.</summary>
        public void Dispose()
        {
            Terminate();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(60))) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            _process.Dispose();
        }
    }
}
