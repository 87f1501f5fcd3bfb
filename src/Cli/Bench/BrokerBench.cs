using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Broker;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench broker`: what the broker costs per chunk. A CPU-light job (synthesizing tiny chunks) runs embedded
/// on one thread (the compute per chunk), then through the broker to 1, 2, 4... `chunkseg worker` processes started
/// here: the time per chunk above the compute is the distributed mode's overhead (publish with confirm, delivery,
/// result with confirm, acknowledgements, manifest), and the coordinator's message rate is its ceiling.
/// </summary>
internal static class BrokerBench
{
    public static Command Create(CommandContext context)
    {
        var broker = new Option<string?>("--broker") { Description = "RabbitMQ address (default: $CHUNKSEG_BROKER)" };
        var workers = new Option<string>("--workers") { Description = "Worker process counts to measure, comma-separated", DefaultValueFactory = _ => "1,2,4" };
        var chunks = new Option<int>("--chunks") { Description = "Chunks per job (a cube of 8³ chunks is made with this many, rounded up)", DefaultValueFactory = _ => 1000 };
        var command = new Command("broker", "Distributed mode's overhead per chunk and coordinator messages/s with 1, 2, 4 worker processes") { broker, workers, chunks };
        command.SetAction(async (parse, ct) =>
        {
            var endpoint = BrokerEndpoint.Resolve(parse.GetValue(broker));
            var counts = parse.GetValue(workers)!.Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
            // The smallest cube of chunks holding as many as asked (in integers: Math.Cbrt(27) is 3.0000000000000004).
            int edge = 1;
            while ((long)edge * edge * edge < parse.GetValue(chunks)) edge++;
            var shape = new Long3(8L * edge, 8L * edge, 8L * edge);
            string dir = Path.Combine(Path.GetTempPath(), $"chunkseg-bench-broker-{Environment.ProcessId}");
            Directory.CreateDirectory(dir);
            var rows = new List<(string Mode, int Workers, long Chunks, double Seconds, double MessagesPerSecond)>();
            try
            {
                var embedded = await Job(dir, "embedded", shape, null, ct).ConfigureAwait(false);
                rows.Add(("embedded, 1 thread", 1, embedded.Chunks, embedded.Seconds, 0));
                await using var connection = await endpoint.ConnectAsync("chunkseg-bench", 1, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
                foreach (int n in counts)
                {
                    var processes = Enumerable.Range(0, n).Select(i => new WorkerProcess(endpoint, $"bench-{i}")).ToList();
                    try
                    {
                        // The clock starts once every worker consumes (process start-up is not the broker's cost).
                        await using (var probe = await connection.CreateChannelAsync(cancellationToken: ct).ConfigureAwait(false))
                        {
                            await Topology.DeclareAsync(probe, ct).ConfigureAwait(false);
                            var waited = Stopwatch.StartNew();
                            while ((await probe.QueueDeclarePassiveAsync(Topology.Tasks, ct).ConfigureAwait(false)).ConsumerCount < n)
                            {
                                if (waited.Elapsed > TimeSpan.FromMinutes(1))
                                    throw new Contracts.Errors.ClusterException($"bench broker: {n} workers did not start within a minute (" +
                                        string.Join("; ", processes.Select((p, i) => $"bench-{i} {p.Describe()}")) + ")");
                                await Task.Delay(100, ct).ConfigureAwait(false);
                            }
                        }
                        RabbitChunkTransport? transport = null;
                        var result = await Job(dir, $"broker-{n}", shape, () => transport = new RabbitChunkTransport(connection, 256, NullLogger.Instance), ct).ConfigureAwait(false);
                        rows.Add(($"broker, {n} worker process(es)", n, result.Chunks, result.Seconds, (transport!.Published + transport.Received) / result.Seconds));
                    }
                    finally
                    {
                        foreach (var p in processes) p.Dispose();
                    }
                }
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
            double computeMs = rows[0].Seconds * 1000 / rows[0].Chunks;
            var table = new Table().Border(TableBorder.Rounded).Title($"bench broker: {rows[0].Chunks} chunks of 8³ (synthesize), {Environment.ProcessorCount} cores")
                .AddColumn("mode").AddColumn(new TableColumn("wall").RightAligned()).AddColumn(new TableColumn("chunks/s").RightAligned())
                .AddColumn(new TableColumn("ms per chunk per worker").RightAligned()).AddColumn(new TableColumn("overhead ms/chunk").RightAligned())
                .AddColumn(new TableColumn("coordinator msg/s").RightAligned());
            var ci = CultureInfo.InvariantCulture;
            foreach (var r in rows)
            {
                double perWorker = r.Seconds * 1000 * r.Workers / r.Chunks;
                table.AddRow(r.Mode, string.Format(ci, "{0:0.00} s", r.Seconds), string.Format(ci, "{0:0}", r.Chunks / r.Seconds), string.Format(ci, "{0:0.00}", perWorker),
                    r.MessagesPerSecond > 0 ? string.Format(ci, "{0:0.00}", perWorker - computeMs) : "-", r.MessagesPerSecond > 0 ? string.Format(ci, "{0:0}", r.MessagesPerSecond) : "-");
            }
            context.Stdout.Write(table);
            return CliApp.Ok;
        });
        return command;
    }

    private static async Task<(long Chunks, double Seconds)> Job(string dir, string name, Long3 shape, Func<IChunkTransport>? transport, CancellationToken ct)
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [shape.Z, shape.Y, shape.X], SynthesizeStage.TypeOf(SyntheticKind.Raw), [8, 8, 8],
            new VoxelSize(1, 1, 1), CodecSpec.Default);
        var request = new JobRequest(StageCatalog.Synthesize, null, VolumeStore.ParseAddress(Path.Combine(dir, name + ".zarr")), options, new Long3(8, 8, 8),
            Workers: 1, Overwrite: true, new Dictionary<string, string> { ["nuclei"] = "20" }, Transport: transport);
        var clock = Stopwatch.StartNew();
        var outcome = await EmbeddedJob.RunAsync(request, NullLoggerFactory.Instance, null, ct).ConfigureAwait(false);
        if (!outcome.Result.IsComplete) throw new Contracts.Errors.ClusterException($"bench broker: {name} did not complete ({outcome.Result.Failed.Count} chunks failed)");
        return (outcome.Result.ChunksTotal, clock.Elapsed.TotalSeconds);
    }

    /// <summary>A worker process of the bench; the tail of what it printed explains a worker that never came up.</summary>
    private sealed class WorkerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _tail = new();

        public WorkerProcess(BrokerEndpoint endpoint, string name)
        {
            // This very program: its apphost (chunkseg), or `dotnet chunkseg.dll` under any other host (dotnet, a test host).
            string program = Environment.ProcessPath!;
            bool apphost = Path.GetFileNameWithoutExtension(program) == Path.GetFileNameWithoutExtension(typeof(BrokerBench).Assembly.Location);
            var start = new ProcessStartInfo(apphost ? program : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            if (!apphost) start.ArgumentList.Add(typeof(BrokerBench).Assembly.Location);
            foreach (var a in (string[])["worker", "--broker", endpoint.Address.ToString(), "--concurrency", "1", "--name", name]) start.ArgumentList.Add(a);
            start.Environment[BrokerEndpoint.UserVariable] = endpoint.User;
            start.Environment[BrokerEndpoint.PasswordVariable] = endpoint.Password;
            _process = Process.Start(start)!;
            _process.OutputDataReceived += (_, e) => Keep(e.Data);
            _process.ErrorDataReceived += (_, e) => Keep(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        /// <summary>Whether it ended, and the last lines it printed.</summary>
        public string Describe() =>
            (_process.HasExited ? $"exited with {_process.ExitCode}" : "running") + (_tail.IsEmpty ? "" : ": " + string.Join(" | ", _tail));

        private void Keep(string? line)
        {
            if (line is null) return;
            _tail.Enqueue(line);
            while (_tail.Count > 5) _tail.TryDequeue(out _);
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }
}
