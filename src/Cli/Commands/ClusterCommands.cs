using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ChunkSeg.Broker;
using ChunkSeg.Cli.Distributed;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// The distributed mode's commands: `worker` and `coordinator` (the long-running processes), `submit`, `status` and
/// `cancel` (what a user types). All talk through the broker named by --broker or CHUNKSEG_BROKER.
/// </summary>
internal static class ClusterCommands
{
    /// <summary>How long SIGTERM may take to drain: a worker finishes the chunks in hand before it exits.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromMinutes(10);

    public static readonly string[] LongRunning = ["worker", "coordinator"];

    private static Option<string?> BrokerOption() => new("--broker")
    {
        Description = $"RabbitMQ address amqp://HOST:5672/ (default: ${BrokerEndpoint.AddressVariable}); credentials from " +
            $"${BrokerEndpoint.UserVariable} / ${BrokerEndpoint.PasswordVariable} or their _FILE variants, never the address",
    };

    private static Option<int> HealthPortOption() => new("--health-port")
    {
        Description = "Serve /healthz and /readyz on this port for Kubernetes probes (0: none)",
        DefaultValueFactory = _ => 0,
    };

    public static IEnumerable<Command> Create(CommandContext context) =>
        [Worker(context), Coordinator(context), Submit(context), Status(context), Cancel(context)];

    private static Command Worker(CommandContext context)
    {
        var broker = BrokerOption();
        var concurrency = new Option<int>("--concurrency") { Description = "Chunks processed at once (default: one per core)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var backend = Options.Backend("features, the forest and the segmentation");
        var storeRoot = new Option<string>("--store-root") { Description = "The shared store: every path a task names must lie below it", DefaultValueFactory = _ => "/" };
        var name = new Option<string?>("--name") { Description = "Worker name in status (default: HOST-PID)" };
        var health = HealthPortOption();
        var command = new Command("worker", "A GPU-node worker: processes chunk tasks from the broker until stopped (SIGTERM drains)")
        {
            broker, concurrency, backend, storeRoot, name, health,
        };
        command.SetAction(async (parse, ct) =>
        {
            var endpoint = BrokerEndpoint.Resolve(parse.GetValue(broker));
            int n = parse.GetValue(concurrency);
            if (n is < 1 or > 256) throw new UsageException($"--concurrency {n}: use 1 to 256");
            using var compute = Options.OpenBackend(parse.GetValue(backend));
            var guard = new StoreGuard(parse.GetValue(storeRoot)!);
            if (!Directory.Exists(guard.Root)) throw new UsageException($"--store-root {guard.Root}: no such folder");
            string workerName = parse.GetValue(name) ?? $"{Environment.MachineName}-{Environment.ProcessId}";
            // A chunk is acknowledged only once its output is on disk.
            VolumeStore.SyncWrites = true;
            using var logs = context.CreateLogs(LogLevel.Information);
            var drill = FaultDrill.FromEnvironment();
            var host = new WorkerHost(endpoint, new WorkerIdentity(workerName, compute.Name, compute.Name == "cpu" ? null : compute.Device, n),
                spec => RunPasses.Open(spec, guard, workerName, compute) is var processor && drill is not null ? drill.Wrap(spec, processor) : processor,
                logs.CreateLogger<WorkerHost>());
            using var probes = HealthEndpoint.Start(parse.GetValue(health), () => host.Ready);
            await host.RunAsync(ct).ConfigureAwait(false);
            return CliApp.Ok;
        });
        return command;
    }

    private static Command Coordinator(CommandContext context)
    {
        var broker = BrokerOption();
        var window = new Option<int>("--max-in-flight") { Description = "Chunk tasks published and not yet answered, at most (backpressure)", DefaultValueFactory = _ => 256 };
        var state = new Option<string>("--state")
        {
            Description = "Folder for the coordinator's job ledger (jobs.jsonl), on durable storage",
            DefaultValueFactory = _ => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "chunkseg", "coordinator"),
        };
        var storeRoot = new Option<string?>("--store-root") { Description = "Also keep the ledger under this shared folder (.chunkseg-coordinator), unless --state is given" };
        var health = HealthPortOption();
        var command = new Command("coordinator", "The coordinator: runs submitted jobs one after another over the broker's workers")
        {
            broker, window, state, storeRoot, health,
        };
        command.SetAction(async (parse, ct) =>
        {
            var endpoint = BrokerEndpoint.Resolve(parse.GetValue(broker));
            int max = parse.GetValue(window);
            if (max < 1) throw new UsageException($"--max-in-flight {max}: must be at least 1");
            string stateDir = parse.GetResult(state) is { Implicit: false } || parse.GetValue(storeRoot) is null
                ? parse.GetValue(state)! : Path.Combine(parse.GetValue(storeRoot)!, ".chunkseg-coordinator");
            using var logs = context.CreateLogs(LogLevel.Information);
            var host = new CoordinatorHost(endpoint, (job, connection, token) => RemoteJobs.ExecuteAsync(job, connection, max, logs, token),
                job => RemoteJobs.SpecOf(job.Arguments).OutDir, stateDir, logs.CreateLogger<CoordinatorHost>());
            using var probes = HealthEndpoint.Start(parse.GetValue(health), () => host.Ready);
            ChunkSeg.Contracts.Telemetry.ChunkSegTelemetry.SetQueueDepthSource(() => host.QueueDepths);
            await host.RunAsync(ct).ConfigureAwait(false);
            return CliApp.Ok;
        });
        return command;
    }

    private static Command Submit(CommandContext context)
    {
        var run = new RunArguments(outRequired: false);
        var broker = BrokerOption();
        var wait = new Option<bool>("--wait") { Description = "Wait until the job ends; exit 0 when done, 1 when it failed or was cancelled" };
        var json = new Option<bool>("--json") { Description = "Print the job (and with --wait its final status) as JSON" };
        var command = new Command("submit", "Queue a run on the cluster: the arguments of `chunkseg run`, or a job file (JOB.yaml) with the same options as keys");
        run.AddTo(command);
        command.Options.Add(broker);
        command.Options.Add(wait);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            string[] args = JobFile.IsJobFile(parse.GetValue(run.Input)) ? JobFile.Read(parse.GetValue(run.Input)!) : run.ToArguments(parse);
            // Checked here, before anything is queued: the same binding the coordinator will do.
            var (bound, boundParse) = RemoteJobs.ParseRun(args);
            var spec = bound.ToSpec(boundParse);
            using (RunPipeline.Open(spec).Raw) { }
            args = bound.ToArguments(boundParse);
            var job = new JobMessage(NewJobId(), args, DateTimeOffset.UtcNow);
            var endpoint = BrokerEndpoint.Resolve(parse.GetValue(broker));
            await using var client = await ControlClient.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            await client.SubmitAsync(job, ct).ConfigureAwait(false);
            if (parse.GetValue(json)) await context.Out.WriteLineAsync(JsonSerializer.Serialize(job, Wire.Options)).ConfigureAwait(false);
            else await context.Out.WriteLineAsync($"submitted job {job.Id}: {spec.OutDir}").ConfigureAwait(false);
            if (!parse.GetValue(wait)) return CliApp.Ok;
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                var status = await client.AskAsync(new ControlRequest("status", job.Id), TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                if (status?.Jobs.FirstOrDefault() is not { } s || s.State is not ("done" or "failed" or "cancelled")) continue;
                if (parse.GetValue(json)) await context.Out.WriteLineAsync(JsonSerializer.Serialize(s, Wire.Options)).ConfigureAwait(false);
                else await context.Out.WriteLineAsync($"job {s.Id}: {s.State}{(s.Error is null ? "" : ": " + s.Error)}").ConfigureAwait(false);
                return s.State == "done" ? CliApp.Ok : CliApp.DataError;
            }
        });
        return command;
    }

    private static Command Status(CommandContext context)
    {
        var job = new Argument<string?>("job") { Description = "One job's id (default: all jobs)", Arity = ArgumentArity.ZeroOrOne };
        var broker = BrokerOption();
        var json = new Option<bool>("--json") { Description = "Print the status as JSON" };
        var command = new Command("status", "Jobs, workers (host, backend, chunks done, last heartbeat) and queue depths") { job, broker, json };
        command.SetAction(async (parse, ct) =>
        {
            var endpoint = BrokerEndpoint.Resolve(parse.GetValue(broker));
            await using var client = await ControlClient.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            var status = await client.AskAsync(new ControlRequest("status", parse.GetValue(job)), TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
            var depths = (await client.QueueDepthsAsync(ct).ConfigureAwait(false)).ToDictionary(d => d.Queue, d => d.Depth);
            status = status is null
                ? new ClusterStatus("-", [], [], depths, "no coordinator answered within 5 s (is `chunkseg coordinator` running?)")
                : status with { Queues = depths };
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(status, Wire.Options)).ConfigureAwait(false);
            }
            else
            {
                Print(context, status);
            }
            return status.Coordinator == "-" || (parse.GetValue(job) is not null && status.Jobs.Count == 0) ? CliApp.DataError : CliApp.Ok;
        });
        return command;
    }

    private static Command Cancel(CommandContext context)
    {
        var job = new Argument<string>("job") { Description = "The job's id (from submit or status)" };
        var broker = BrokerOption();
        var command = new Command("cancel", "Cancel a queued or running job (its chunks still queued are dropped)") { job, broker };
        command.SetAction(async (parse, ct) =>
        {
            var endpoint = BrokerEndpoint.Resolve(parse.GetValue(broker));
            await using var client = await ControlClient.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            var answer = await client.AskAsync(new ControlRequest("cancel", parse.GetValue(job)), TimeSpan.FromSeconds(5), ct).ConfigureAwait(false)
                ?? throw new ClusterException("cancel: no coordinator answered within 5 s (is `chunkseg coordinator` running?)");
            await context.Out.WriteLineAsync(answer.Message ?? $"job {parse.GetValue(job)}: cancel requested").ConfigureAwait(false);
            return CliApp.Ok;
        });
        return command;
    }

    private static void Print(CommandContext context, ClusterStatus status)
    {
        var ci = CultureInfo.InvariantCulture;
        if (status.Message is { } message) context.Out.WriteLine(message);
        var jobs = new Table().Border(TableBorder.Rounded).Title("jobs").AddColumn("id").AddColumn("state").AddColumn("stage")
            .AddColumn(new TableColumn("chunks").RightAligned()).AddColumn("output").AddColumn("error");
        foreach (var j in status.Jobs)
            jobs.AddRow(j.Id, j.State, Markup.Escape(j.Stage ?? "-"), j.ChunksTotal > 0 ? $"{j.ChunksDone}/{j.ChunksTotal}" : "-",
                Markup.Escape(j.Output), Markup.Escape(j.Error ?? ""));
        var workers = new Table().Border(TableBorder.Rounded).Title("workers").AddColumn("worker").AddColumn("host").AddColumn("backend")
            .AddColumn("GPU").AddColumn(new TableColumn("busy").RightAligned()).AddColumn(new TableColumn("chunks done").RightAligned())
            .AddColumn(new TableColumn("failed").RightAligned()).AddColumn(new TableColumn("memory").RightAligned()).AddColumn("last heartbeat");
        foreach (var w in status.Workers)
            workers.AddRow(Markup.Escape(w.Worker), Markup.Escape(w.Host), w.Backend, Markup.Escape(w.Gpu ?? "-"), $"{w.Busy}/{w.Concurrency}",
                w.ChunksDone.ToString(ci), w.ChunksFailed.ToString(ci), string.Format(ci, "{0:0} MB", w.MemoryBytes / 1e6),
                string.Format(ci, "{0:0.0} s ago", (DateTimeOffset.UtcNow - w.Time).TotalSeconds));
        var queues = new Table().Border(TableBorder.Rounded).Title("queues").AddColumn("queue").AddColumn(new TableColumn("waiting").RightAligned());
        foreach (var (queue, depth) in status.Queues.OrderBy(q => q.Key, StringComparer.Ordinal)) queues.AddRow(queue, depth.ToString(ci));
        context.Stdout.Write(jobs);
        context.Stdout.Write(workers);
        context.Stdout.Write(queues);
    }

    private static string NewJobId() => DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..6];
}
